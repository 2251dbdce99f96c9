import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    // The lab's slow, synchronous preparation runs here, outside the test workers.
    globalSetup: ["test/global-setup.ts"],
  },
});
