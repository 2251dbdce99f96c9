/**
 * The policy pack's rules, run the way the engine runs them (one call per resource with its type
 * and inputs): every shipped stack passes every rule; crafted bad resources fail the rule meant for
 * them, and only that rule.
 */
import type {
  PolicyResource,
  ResourceValidation,
  ResourceValidationArgs,
  StackValidationArgs,
} from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { AwsDeployment } from "../components/aws-deployment";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";
import { policies } from "../policy/policies";
import { installMocks, settle, value, type Registration } from "./support/pulumi-mocks";

interface Violation {
  policy: string;
  resource: string;
  message: string;
}

async function check(resources: readonly Registration[]): Promise<Violation[]> {
  const out: Violation[] = [];
  for (const p of policies) {
    if ("validateStack" in p) {
      const args = {
        resources: resources.map(
          (r): PolicyResource =>
            ({
              type: r.type,
              props: r.inputs,
              urn: `urn:pulumi:test::qwen-vl-deploy::${r.type}::${r.name}`,
              name: r.name,
            }) as unknown as PolicyResource,
        ),
      } as unknown as StackValidationArgs;
      await p.validateStack(args, (message) => out.push({ policy: p.name, resource: "", message }));
      continue;
    }
    const fns = ([] as ResourceValidation[]).concat(p.validateResource ?? []);
    for (const fn of fns) {
      const only = (fn as { __pulumiType?: string }).__pulumiType;
      for (const r of resources) {
        if (only && only !== r.type) continue;
        const args = {
          type: r.type,
          props: r.inputs,
          urn: `urn:pulumi:test::qwen-vl-deploy::${r.type}::${r.name}`,
          name: r.name,
          opts: {},
          isType: (cls: { __pulumiType?: string }) => cls.__pulumiType === r.type,
          asType: () => r.inputs,
          getConfig: () => ({}),
        } as unknown as ResourceValidationArgs;
        await fn(args, (message) => out.push({ policy: p.name, resource: r.name, message }));
      }
    }
  }
  return out;
}

async function shippedResources(stack: string): Promise<Registration[]> {
  const rec = installMocks(stack);
  const d = new AwsDeployment(stack, { plan: planStack(readStackFile(stack).sections, { stack }) });
  await value(d.endpoint);
  await settle(rec);
  return rec.registrations;
}

const goodInstance = (): Registration => ({
  type: "aws:ec2/instance:Instance",
  name: "node",
  inputs: {
    instanceType: "g5.xlarge",
    metadataOptions: { httpTokens: "required" },
    rootBlockDevice: { encrypted: true, volumeSize: 100 },
    tags: { Project: "qwen-vl-deploy", Stack: "s", Role: "head", Model: "m" },
  },
});
const rule = (inputs: Record<string, unknown>): Registration => ({
  type: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  name: "rule",
  inputs,
});

describe("policy pack", () => {
  for (const stack of ["single-gpu", "multi-gpu", "large"]) {
    it(`${stack}: every rule passes on every resource`, async () => {
      const resources = await shippedResources(stack);
      expect(resources.length).toBeGreaterThan(8);
      expect(await check(resources)).toEqual([]);
    });
  }

  it("the well-formed crafted instance passes (the bad cases below differ in one thing)", async () => {
    expect(await check([goodInstance()])).toEqual([]);
  });

  const cases: [string, Registration, string, RegExp][] = [
    [
      "SSH from the world",
      rule({ ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "0.0.0.0/0" }),
      "ssh-not-open-to-the-world",
      /SSH is open/,
    ],
    [
      "all ports from the world (covers SSH)",
      rule({ ipProtocol: "-1", cidrIpv6: "::/0" }),
      "ssh-not-open-to-the-world",
      /SSH is open/,
    ],
    [
      "SSH in an inline security group rule",
      {
        type: "aws:ec2/securityGroup:SecurityGroup",
        name: "sg",
        inputs: {
          ingress: [{ protocol: "tcp", fromPort: 0, toPort: 1024, cidrBlocks: ["0.0.0.0/0"] }],
          tags: { Project: "p", Stack: "s" },
        },
      },
      "ssh-not-open-to-the-world",
      /SSH/,
    ],
    [
      "the API open to the world without approval",
      rule({ ipProtocol: "tcp", fromPort: 8000, toPort: 8000, cidrIpv4: "0.0.0.0/0", tags: {} }),
      "api-not-open-to-the-world",
      /8000-8000 is open to the whole internet/,
    ],
    [
      "SSH from half the internet (0.0.0.0/1: open by the share it covers, not by spelling)",
      rule({ ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "0.0.0.0/1" }),
      "ssh-not-open-to-the-world",
      /SSH is open/,
    ],
    [
      "the API open to 3.0.0.0/8 (a /8 of public addresses is the world)",
      rule({ ipProtocol: "tcp", fromPort: 8000, toPort: 8000, cidrIpv4: "3.0.0.0/8", tags: {} }),
      "api-not-open-to-the-world",
      /8000-8000 is open/,
    ],
    [
      "IMDSv1 allowed",
      {
        ...goodInstance(),
        inputs: { ...goodInstance().inputs, metadataOptions: { httpTokens: "optional" } },
      },
      "imdsv2-required",
      /IMDSv1/,
    ],
    [
      "unencrypted root volume",
      {
        ...goodInstance(),
        inputs: { ...goodInstance().inputs, rootBlockDevice: { encrypted: false } },
      },
      "volumes-encrypted",
      /root volume is not encrypted/,
    ],
    [
      "unencrypted EBS volume",
      { type: "aws:ebs/volume:Volume", name: "v", inputs: { size: 10 } },
      "volumes-encrypted",
      /not encrypted/,
    ],
    [
      "an HF token in user data",
      {
        ...goodInstance(),
        inputs: {
          ...goodInstance().inputs,
          userData: "#!/bin/bash\nexport HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz12\n",
        },
      },
      "no-secrets-in-user-data",
      /Hugging Face token|secret environment variable/,
    ],
    [
      "an API key in base64 user data",
      {
        ...goodInstance(),
        inputs: {
          ...goodInstance().inputs,
          userDataBase64: Buffer.from("vllm serve m --api-key s3cret").toString("base64"),
        },
      },
      "no-secrets-in-user-data",
      /--api-key/,
    ],
    [
      "an instance type outside the catalog",
      { ...goodInstance(), inputs: { ...goodInstance().inputs, instanceType: "p2.xlarge" } },
      "instance-types-from-catalog",
      /p2.xlarge is not in the catalog/,
    ],
    [
      "an instance without its tags",
      {
        ...goodInstance(),
        inputs: { ...goodInstance().inputs, tags: { Project: "qwen-vl-deploy" } },
      },
      "tags-present",
      /missing tags: Stack, Role, Model/,
    ],
    [
      "a security group without tags",
      { type: "aws:ec2/securityGroup:SecurityGroup", name: "sg", inputs: {} },
      "tags-present",
      /missing tags: Project, Stack/,
    ],
  ];
  for (const [what, resource, policy, message] of cases) {
    it(`${policy} bites: ${what}`, async () => {
      const v = await check([resource]);
      expect(v.map((x) => x.policy)).toEqual([policy]);
      expect(v[0]!.message).toMatch(message);
    });
  }

  it("private ranges are not the world: 10.0.0.0/8 on SSH passes", async () => {
    expect(
      await check([rule({ ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "10.0.0.0/8" })]),
    ).toEqual([]);
  });

  it("four /10s, each narrow, together open SSH and the API of one group: the union policy bites", async () => {
    const quarters = ["4.0.0.0/10", "4.64.0.0/10", "4.128.0.0/10", "4.192.0.0/10"];
    const rules = quarters.flatMap((cidr, i) => [
      {
        ...rule({
          securityGroupId: "sg-1",
          ipProtocol: "tcp",
          fromPort: 22,
          toPort: 22,
          cidrIpv4: cidr,
        }),
        name: `ssh${i}`,
      },
      {
        ...rule({
          securityGroupId: "sg-1",
          ipProtocol: "tcp",
          fromPort: 8000,
          toPort: 8000,
          cidrIpv4: cidr,
          tags: {},
        }),
        name: `api${i}`,
      },
    ]);
    const v = await check(rules);
    expect(v.map((x) => x.policy)).toEqual([
      "ingress-union-not-open-to-the-world",
      "ingress-union-not-open-to-the-world",
    ]);
    expect(v[0]!.message).toMatch(/sg-1: port 22 is open to .* by 4.0.0.0\/10, 4.64.0.0\/10/);
    expect(v[1]!.message).toMatch(/port 8000 .* without approval/);
    // Three of the four are not a /8's worth: nothing to report.
    expect(await check(rules.slice(0, 6))).toEqual([]);
  });

  it("an approved public API rule (allowPublicApi with an API key) passes; the component tags it only then", async () => {
    expect(
      await check([
        rule({
          ipProtocol: "tcp",
          fromPort: 8000,
          toPort: 8000,
          cidrIpv4: "0.0.0.0/0",
          tags: { PublicApi: "approved" },
        }),
      ]),
    ).toEqual([]);
    const rec = installMocks("pub");
    const s = readStackFile("single-gpu").sections;
    const plan = planStack({
      ...s,
      network: {
        apiCidrs: ["0.0.0.0/0"],
        allowPublicApi: true,
        certificateArn:
          "arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
      },
      secrets: { apiKey: "ssm:/qwen/api-key" },
    });
    const d = new AwsDeployment("pub", { plan });
    await value(d.endpoint);
    await settle(rec);
    expect(await check(rec.registrations)).toEqual([]);
    // HTTPS through the load balancer: the world reaches 443 there, never the nodes.
    expect(
      rec.registrations.find((r) => r.name === "pub-net-lb-https-0")!.inputs["tags"]["PublicApi"],
    ).toBe("approved");
    expect(rec.registrations.find((r) => r.name === "pub-net-nodes-api-0")).toBeUndefined();
  });
});
