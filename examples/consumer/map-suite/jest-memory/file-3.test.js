require("./fill")();
