module.exports = require("./native_token_storage.node");
