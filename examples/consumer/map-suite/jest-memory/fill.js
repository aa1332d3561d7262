// Each test file of this folder stores 40 MB of tokens in the default memory store, then
// notes the process's memory in the file MAP_SUITE_RSS names. Run with --runInBand, the
// files share one process: if a finished file's store were kept, each file would add 40 MB.
const fs = require("node:fs");

module.exports = function fill() {
  test("stores 40 MB of tokens in this file's memory store", () => {
    const tokenStorage = require("../src/tokenStorage");
    expect(tokenStorage.getStats().totalTokens).toBe(0);
    const apiKey = "sk-or-".padEnd(2000, "k");
    const records = [];
    for (let i = 0; i < 20000; i++) records.push({ accessToken: `token-${i}`, apiKey: `${apiKey}${i}`, userId: "user", clientId: "client", scopes: ["mcp"] });
    expect(tokenStorage.storeAccessTokens(records)).toBe(20000);
    if (typeof gc === "function") gc();
    fs.appendFileSync(process.env.MAP_SUITE_RSS, `${process.memoryUsage().rss}\n`);
  });
};
