// The server's utils/tokenStorage.js after the swap: its suites below were written for the
// module of Maps this line replaced, and run unchanged.
module.exports = require("native-token-storage");
