// Type definitions for native-token-storage/clients: the functions of `ClientStore` (declared
// once, in index.d.ts), for a Map-based clientRegistry.js's callers.
import type { ClientStore } from "./index";

declare const clients: ClientStore;
export = clients;
