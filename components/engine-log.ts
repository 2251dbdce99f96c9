/**
 * A step's progress on the engine's display, from inside the dynamic provider's process: the engine
 * passes its own address as the provider's first argument (@pulumi/pulumi cmd/dynamic-provider:
 * "the address of the RPC endpoint for the engine"), and pulumirpc.Engine/Log takes a message for a
 * resource's URN, ephemeral (the resource's status line, not kept in the summary). Outside an engine
 * (tests, the lab's direct runs) it does nothing.
 */
/* eslint-disable @typescript-eslint/no-require-imports */

export interface ProgressLogger {
  readonly line: (text: string) => void;
  /** Waits (bounded) for the lines already sent. */
  readonly close: () => Promise<void>;
}

/** The longest line shown (a step's output can carry long lines: a progress bar, a JSON blob). */
const MAX_LINE = 300;

export function progressLogger(urn: string | undefined, label: string): ProgressLogger {
  // The engine's address is the provider's last argument: flags (-v, --logtostderr, --tracing)
  // come before it (the engine's plugin arguments).
  const address = [...process.argv.slice(2)].reverse().find((a) => /^[\w.-]+:\d+$/.test(a));
  if (!urn || !address) return { line: () => undefined, close: async () => undefined };
  const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const engrpc = require("@pulumi/pulumi/proto/engine_grpc_pb.js");
  const engproto = require("@pulumi/pulumi/proto/engine_pb.js");
  const client = new engrpc.EngineClient(address, grpc.credentials.createInsecure());
  let last: Promise<void> = Promise.resolve();
  return {
    line: (text) => {
      const message = `[${label}] ${text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}…` : text}`;
      // In order, one at a time; a failed log never fails the step.
      last = last.then(
        () =>
          new Promise<void>((resolve) => {
            const req = new engproto.LogRequest();
            req.setSeverity(engproto.LogSeverity.INFO);
            req.setMessage(message);
            req.setUrn(urn);
            req.setEphemeral(true);
            client.log(req, () => resolve());
          }),
      );
    },
    close: async () => {
      await Promise.race([last, new Promise((r) => setTimeout(r, 5_000))]);
      client.close();
    },
  };
}
