/**
 * What the ordinary `pulumi up` needs at run time is a runtime dependency. Pulumi's Node.js
 * language host compiles index.ts with the project's `typescript` when it can require one, and
 * falls back to the TypeScript 3.8.3 it vendors otherwise (@pulumi/pulumi tsutils.js,
 * typeScriptRequireStrings); 3.8.3 rejects this tsconfig. ts-node is not needed: the vendored
 * ts-node 7.0.1 runs the project's TypeScript (measured, reference/pulumi-engine-here.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../config/stack-file";

const json = (p: string) => JSON.parse(readFileSync(join(PROJECT_ROOT, p), "utf8"));

function tsconfigErrors(ts: typeof import("typescript")): string[] {
  const file = join(PROJECT_ROOT, "tsconfig.json");
  const cfg = ts.readConfigFile(file, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, PROJECT_ROOT);
  return parsed.errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, "\n"));
}

describe("typescript is a runtime dependency (npm ci --omit=dev, --omit=optional, other clients)", () => {
  const pkg = json("package.json");
  const lock = json("package-lock.json");

  it("is in dependencies, not devDependencies, in package.json and in the lock", () => {
    expect(pkg.dependencies.typescript).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pkg.devDependencies.typescript).toBeUndefined();
    expect(lock.packages[""].dependencies.typescript).toBe(pkg.dependencies.typescript);
    expect(lock.packages[""].devDependencies?.typescript).toBeUndefined();
    // Neither flag: npm ci keeps it whatever is omitted.
    const entry = lock.packages["node_modules/typescript"];
    expect(entry.version).toBe(pkg.dependencies.typescript);
    expect(entry.dev ?? entry.devOptional ?? entry.optional).toBeUndefined();
  });

  it("the pinned version reads the tsconfig; the language host's vendored 3.8.3 does not", async () => {
    const installed = (await import("typescript")).default;
    expect(installed.version).toBe(pkg.dependencies.typescript);
    expect(tsconfigErrors(installed)).toEqual([]);
    // The language host's fallback is a plain file, not a package: required by its path.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const vendored = require(
      join(PROJECT_ROOT, "node_modules/@pulumi/pulumi/vendor/typescript@3.8.3/typescript.js"),
    ) as typeof import("typescript");
    expect(vendored.version).toBe("3.8.3");
    expect(tsconfigErrors(vendored).join("\n")).toMatch(/--target|noUncheckedIndexedAccess/);
  });

  it("is in the range @pulumi/pulumi accepts as its peer", () => {
    const sdk = json("node_modules/@pulumi/pulumi/package.json");
    expect(sdk.peerDependencies.typescript).toBe(">= 3.8.3 < 7");
    const major = Number(pkg.dependencies.typescript.split(".")[0]);
    expect(major).toBeGreaterThanOrEqual(4);
    expect(major).toBeLessThan(7);
  });
});
