// The default Jest configuration, but for where the suite is.
module.exports = { rootDir: __dirname, testEnvironment: "node" };
