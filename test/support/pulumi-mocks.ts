/**
 * Pulumi's official unit-test mocks, recording every registration and invoke. Invokes not stubbed
 * here throw: a component that starts looking something up must say so in a test first.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
  readonly type: string;
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly inputs: Record<string, any>;
  readonly provider?: string;
}

export interface Recorder {
  readonly registrations: Registration[];
  readonly invokes: { token: string; inputs: Record<string, unknown>; provider?: string }[];
}

export const FAKE_AMI = "ami-0123456789abcdef0";
export const MOCK_DEPLOY_PUBLIC_KEY = "ssh-ed25519 AAAAmockdeploykey qwen-vl-deploy";
export const MOCK_DEPLOY_PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-private-key-material\n-----END OPENSSH PRIVATE KEY-----\n";

let mockPartition = "aws";
let mockQuotaVcpus = 1536;

/** The applied value getServiceQuota answers (vCPUs); every quota the same. */
export function setMockQuotaVcpus(v: number): void {
  mockQuotaVcpus = v;
}

/** The partition getPartition answers (GovCloud and China stacks). */
export function setMockPartition(p: string): void {
  mockPartition = p;
}

/**
 * What EC2 answers for any capacity reservation or Capacity Block: p5.48xlarge in the region's
 * zone "f", which is not the first zone that offers the type (b): the reservation decides.
 */
export const reservation = (region: string) => ({
  availabilityZone: `${region}f`,
  instanceType: "p5.48xlarge",
});

export function installMocks(stack: string, project = "qwen-vl-deploy"): Recorder {
  const rec: Recorder = { registrations: [], invokes: [] };
  // The region of the stack's AWS provider: zone lookups answer for it.
  let region = "us-east-1";
  let ip = 10;
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        rec.registrations.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          ...(args.provider ? { provider: args.provider } : {}),
        });
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type === "pulumi:providers:aws") region = String(args.inputs["region"]);
        if (args.type === "aws:ec2/instance:Instance") {
          ip += 1;
          state["publicIp"] = `203.0.113.${ip}`;
          state["privateIp"] = `10.42.0.${ip}`;
          state["primaryNetworkInterfaceId"] = `eni-${args.name}`;
        }
        if (args.type === "aws:lb/loadBalancer:LoadBalancer")
          state["dnsName"] = `${args.name}.elb.example`;
        if (args.type === "aws:ec2/placementGroup:PlacementGroup")
          state["name"] = `${args.name}-pg`;
        if (args.type === "aws:iam/instanceProfile:InstanceProfile")
          state["name"] = `${args.name}-profile`;
        if (args.type === "aws:ec2/keyPair:KeyPair") state["keyName"] = `${args.name}-kp`;
        if (args.type === "aws:ec2/launchTemplate:LaunchTemplate") state["latestVersion"] = 1;
        if (args.type === "aws:ec2/eip:Eip") state["publicIp"] = "198.51.100.200";
        if (args.type === "pulumi-nodejs:dynamic/qwen-vl-deploy:DeployKey") {
          state["publicKey"] = MOCK_DEPLOY_PUBLIC_KEY;
          state["privateKey"] = MOCK_DEPLOY_PRIVATE_KEY;
        }
        if (args.type === "pulumi-nodejs:dynamic/qwen-vl-deploy:ConsoleHostKey")
          state["hostKeys"] = [
            `ssh-ed25519 AAAAhostkeyof${args.name}`,
            `ssh-rsa AAAArsahostkeyof${args.name}`,
          ];
        if (args.type === "pulumi-nodejs:dynamic/qwen-vl-deploy:RemoteStep") {
          state["changed"] = true;
          state["tail"] = `ran ${args.name}`;
        }
        // An existing On-Demand Capacity Reservation, read (not created): see RESERVED below.
        if (args.type === "aws:ec2/capacityReservation:CapacityReservation" && args.id)
          return { id: args.id, state: { ...args.inputs, ...reservation(region) } };
        if (args.type === "aws:lb/targetGroup:TargetGroup")
          state["arn"] = `arn:aws:elasticloadbalancing:::targetgroup/${args.name}`;
        return { id: `${args.name}-id`, state };
      },
      call: (args) => {
        rec.invokes.push({
          token: args.token,
          inputs: args.inputs,
          ...(args.provider ? { provider: args.provider } : {}),
        });
        switch (args.token) {
          case "aws:ssm/getParameter:getParameter":
            return { name: args.inputs["name"], value: FAKE_AMI, type: "String" };
          case "aws:ec2/getVpcs:getVpcs":
            return { id: region, ids: ["vpc-default"] };
          case "aws:ec2/getSubnets:getSubnets": {
            const filters = (args.inputs["filters"] ?? []) as { name: string; values: string[] }[];
            const az = filters.find((f) => f.name === "availability-zone")?.values[0];
            return {
              ids: az
                ? [`subnet-${az}`]
                : ["subnet-us-east-1a", "subnet-us-east-1b", "subnet-us-east-1c"],
            };
          }
          case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            // AZ letters differ per account: the offered zones, not "a", decide.
            return {
              locations: [`${region}d`, `${region}b`, `${region}f`],
              locationTypes: ["availability-zone", "availability-zone", "availability-zone"],
              instanceTypes: ["x", "x", "x"],
            };
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
              names: ["a", "b", "c", "d", "f"].map((l) => `${region}${l}`),
              zoneIds: [],
            };
          case "aws:ec2/getAmi:getAmi":
            // The Deep Learning Base AMI's root snapshot is 75 GiB.
            return {
              id: FAKE_AMI,
              blockDeviceMappings: [{ deviceName: "/dev/sda1", ebs: { volume_size: "75" } }],
            };
          case "aws:ec2/getCapacityBlockReservation:getCapacityBlockReservation":
            return { id: args.inputs["id"], ...reservation(region) };
          case "aws:servicequotas/getServiceQuota:getServiceQuota":
            return {
              serviceCode: "ec2",
              // By name (no code known): a made-up code stands for the one AWS would return.
              quotaCode: args.inputs["quotaCode"] ?? "L-MOCKP5SPOT",
              quotaName: args.inputs["quotaName"] ?? "mock",
              value: mockQuotaVcpus,
            };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return {
              accountId: "123456789012",
              arn: "arn:aws:iam::123456789012:user/test",
              userId: "test",
            };
          case "aws:index/getPartition:getPartition":
            return { partition: mockPartition, dnsSuffix: "amazonaws.com" };
          default:
            throw new Error(`invoke ${args.token} is not stubbed in test/support/pulumi-mocks.ts`);
        }
      },
    },
    project,
    stack,
    false,
  );
  return rec;
}

export function value<T>(o: pulumi.Input<T> | undefined): Promise<T | undefined> {
  return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

/** Waits until no new registration arrives for a few turns of the event loop (bounded). */
export async function settle(rec: Recorder): Promise<void> {
  let stable = 0;
  let last = -1;
  for (let i = 0; i < 500 && stable < 20; i++) {
    await new Promise((r) => setImmediate(r));
    if (rec.registrations.length === last) stable++;
    else {
      stable = 0;
      last = rec.registrations.length;
    }
  }
}
