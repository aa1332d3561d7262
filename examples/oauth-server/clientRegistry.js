module.exports = require("native-token-storage/clients");
