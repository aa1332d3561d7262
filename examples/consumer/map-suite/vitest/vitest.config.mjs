// Vitest's defaults, but the threads pool: there the test files share one process (each
// its own worker thread), as Jest's share one with --runInBand. (The forks pool gives each
// file a process of its own.)
export default { test: { pool: "threads", include: ["**/*.test.mjs"] } };
