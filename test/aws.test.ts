/**
 * The AWS components under Pulumi's mocks: for every shipped AWS stack, exactly which resources
 * are registered and with which inputs that matter; then the options a stack can turn on.
 */
import { describe, expect, it } from "vitest";
import { AMIS } from "../catalogs/amis";
import { OPERATOR_IAM, operatorActions } from "../catalogs/operator-iam";
import { AwsDeployment } from "../components/aws-deployment";
import { SESSION_MANAGER_POLICY } from "../components/node-role";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";
import {
  FAKE_AMI,
  installMocks,
  MOCK_DEPLOY_PUBLIC_KEY,
  setMockPartition,
  setMockQuotaVcpus,
  settle,
  value,
  type Recorder,
  type Registration,
} from "./support/pulumi-mocks";

/** Every deployment's recorder, for the operator's permissions at the end (catalogs/operator-iam.ts). */
const recorded: Recorder[] = [];

async function deploy(
  stack: string,
  sections: Record<string, unknown>,
): Promise<{ rec: Recorder; d: AwsDeployment; plan: ReturnType<typeof planStack> }> {
  const rec = installMocks(stack);
  recorded.push(rec);
  const plan = planStack(sections, { stack, secretKeys: new Set(["apiKey"]) });
  const d = new AwsDeployment(stack, { plan });
  await value(d.endpoint);
  await Promise.all(d.nodes.map((n) => value(n.connect)));
  await settle(rec);
  return { rec, d, plan };
}

const byType = (rec: Recorder, type: string) => rec.registrations.filter((r) => r.type === type);
const one = (rec: Recorder, name: string): Registration => {
  const found = rec.registrations.filter((r) => r.name === name);
  expect(found, name).toHaveLength(1);
  return found[0]!;
};
const inventory = (rec: Recorder) => rec.registrations.map((r) => `${r.type} ${r.name}`).sort();

const BASE_SINGLE = (s: string) => [
  `pulumi:providers:aws ${s}-aws`,
  `qwen-vl-deploy:aws:Deployment ${s}`,
  `qwen-vl-deploy:aws:Network ${s}-net`,
  `aws:ec2/securityGroup:SecurityGroup ${s}-net-nodes`,
  `aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule ${s}-net-nodes-egress`,
  `qwen-vl-deploy:aws:NodeRole ${s}-node`,
  `aws:iam/role:Role ${s}-node-role`,
  `aws:iam/rolePolicy:RolePolicy ${s}-node-session-manager`,
  `aws:iam/instanceProfile:InstanceProfile ${s}-node-profile`,
  // The deployment's own SSH key (provisioning reaches the nodes with it).
  `pulumi-nodejs:dynamic/qwen-vl-deploy:DeployKey ${s}-deploy-key`,
];
const NODE = (s: string, n: string) => [
  `qwen-vl-deploy:aws:GpuNode ${s}-${n}`,
  `aws:ec2/instance:Instance ${s}-${n}-instance`,
  // Its SSH host key, read from its console.
  `pulumi-nodejs:dynamic/qwen-vl-deploy:ConsoleHostKey ${s}-${n}-hostkey`,
];

describe("shipped AWS stacks: exact resources", () => {
  it("single-gpu: one g5.xlarge, closed network, nothing else", async () => {
    const { rec, d, plan } = await deploy("single-gpu", readStackFile("single-gpu").sections);
    expect(inventory(rec)).toEqual(
      [...BASE_SINGLE("single-gpu"), ...NODE("single-gpu", "head")].sort(),
    );
    const i = one(rec, "single-gpu-head-instance").inputs;
    expect(i["instanceType"]).toBe("g5.xlarge");
    expect(i["ami"]).toBe(FAKE_AMI);
    expect(
      rec.invokes.find((x) => x.token === "aws:ssm/getParameter:getParameter")!.inputs["name"],
    ).toBe(AMIS["dlami-ubuntu-22.04"].ssmParameter);
    expect(i["metadataOptions"]).toEqual({
      httpTokens: "required",
      httpEndpoint: "enabled",
      httpPutResponseHopLimit: 2,
    });
    // The AMI's own 75 GiB snapshot + the venv (25) + the weights + caches (20): 64 GiB over the
    // weights would not hold the Deep Learning AMI, the venv and the weights.
    expect(i["rootBlockDevice"]).toMatchObject({
      volumeSize: Math.ceil(75 + 25 + plan.model.checkpointGiB + 20),
      volumeType: "gp3",
      encrypted: true,
      deleteOnTermination: true,
    });
    // Small weights: gp3's baseline throughput.
    expect(i["rootBlockDevice"]["throughput"]).toBeUndefined();
    expect(rec.invokes.find((x) => x.token === "aws:ec2/getAmi:getAmi")!.inputs).toMatchObject({
      filters: [{ name: "image-id", values: [FAKE_AMI] }],
    });
    expect(i["iamInstanceProfile"]).toBe("single-gpu-node-profile-profile");
    expect(i["keyName"]).toBeUndefined();
    expect(i["placementGroup"]).toBeUndefined();
    expect(i["instanceMarketOptions"]).toBeUndefined();
    // Only the deployment key's public half reaches the node, through cloud-init.
    expect(i["userData"]).toBe(
      `#cloud-config\nssh_authorized_keys:\n  - ${MOCK_DEPLOY_PUBLIC_KEY}\n`,
    );
    expect(i["tags"]).toMatchObject({
      Project: "qwen-vl-deploy",
      Stack: "single-gpu",
      Role: "head",
      Model: "Qwen/Qwen2-VL-7B-Instruct",
    });
    // The vCPU quota the launch draws on, looked up before any instance (it gates their image).
    expect(
      rec.invokes
        .filter((x) => x.token === "aws:servicequotas/getServiceQuota:getServiceQuota")
        .map((x) => x.inputs),
    ).toEqual([{ serviceCode: "ec2", quotaCode: "L-DB2E81BA" }]);
    expect(one(rec, "single-gpu-aws").inputs["region"]).toBe("us-east-1");
    // Every lookup goes through the stack's provider (its region), never the ambient default.
    expect(rec.invokes.length).toBeGreaterThan(0);
    for (const inv of rec.invokes)
      expect(inv.provider, inv.token).toMatch(/pulumi:providers:aws::single-gpu-aws::/);
    for (const r of rec.registrations.filter((x) => x.type.startsWith("aws:")))
      expect(r.provider, r.name).toMatch(/pulumi:providers:aws::single-gpu-aws::/);
    // Closed by default: no ingress rule at all; egress to the world for packages and weights.
    expect(byType(rec, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")).toEqual([]);
    expect(one(rec, "single-gpu-net-nodes-egress").inputs).toMatchObject({
      ipProtocol: "-1",
      cidrIpv4: "0.0.0.0/0",
    });
    // Session Manager's five actions and nothing else: no managed policy with ssm:GetParameter on
    // every parameter (AmazonSSMManagedInstanceCore), no Run Command.
    expect(byType(rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")).toEqual([]);
    // (The policy's content: components.test.ts.)
    expect(JSON.parse(one(rec, "single-gpu-node-session-manager").inputs["policy"])).toEqual(
      SESSION_MANAGER_POLICY,
    );
    expect(await value(d.endpoint)).toBe("http://localhost:8000");
    expect(await value(d.tunnelCommand)).toMatch(
      /aws ssm start-session --region us-east-1 --target single-gpu-head-instance-id --document-name AWS-StartPortForwardingSession --parameters '\{"portNumber":\["8000"\],"localPortNumber":\["8000"\]\}'/,
    );
  });

  it("multi-gpu: two g4dn.12xlarge in a cluster placement group, members reach each other", async () => {
    const { rec, d } = await deploy("multi-gpu", readStackFile("multi-gpu").sections);
    expect(inventory(rec)).toEqual(
      [
        ...BASE_SINGLE("multi-gpu"),
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule multi-gpu-net-nodes-from-cluster",
        "aws:ec2/placementGroup:PlacementGroup multi-gpu-net-placement",
        ...NODE("multi-gpu", "head"),
        ...NODE("multi-gpu", "worker1"),
      ].sort(),
    );
    expect(one(rec, "multi-gpu-net-placement").inputs["strategy"]).toBe("cluster");
    const self = one(rec, "multi-gpu-net-nodes-from-cluster").inputs;
    expect(self).toMatchObject({
      ipProtocol: "-1",
      securityGroupId: "multi-gpu-net-nodes-id",
      referencedSecurityGroupId: "multi-gpu-net-nodes-id",
    });
    expect(self["cidrIpv4"]).toBeUndefined();
    for (const n of ["head", "worker1"]) {
      const i = one(rec, `multi-gpu-${n}-instance`).inputs;
      expect(i["instanceType"]).toBe("g4dn.12xlarge");
      expect(i["placementGroup"]).toBe("multi-gpu-net-placement-pg");
      expect(i["vpcSecurityGroupIds"]).toEqual(["multi-gpu-net-nodes-id"]);
      // The first zone (by name) that offers g4dn.12xlarge, not a hard-coded "a".
      expect(i["subnetId"]).toBe("subnet-us-east-1b");
    }
    const offerings = rec.invokes.find(
      (x) => x.token === "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
    )!;
    expect(offerings.inputs).toMatchObject({
      locationType: "availability-zone",
      filters: [{ name: "instance-type", values: ["g4dn.12xlarge"] }],
    });
    expect(d.nodes.map((n) => [n.name, n.role])).toEqual([
      ["head", "head"],
      ["worker1", "worker"],
    ]);
  });

  it("large: one p5.48xlarge with a root volume sized for 72B", async () => {
    const { rec, plan } = await deploy("large", readStackFile("large").sections);
    expect(inventory(rec)).toEqual([...BASE_SINGLE("large"), ...NODE("large", "head")].sort());
    const i = one(rec, "large-head-instance").inputs;
    expect(i["instanceType"]).toBe("p5.48xlarge");
    expect(i["rootBlockDevice"]["volumeSize"]).toBe(
      Math.ceil(75 + 25 + plan.model.checkpointGiB + 20),
    );
    expect(i["rootBlockDevice"]["volumeSize"]).toBeGreaterThan(250);
    // 72B's weights are read at every start: gp3 at its maximum throughput.
    expect(i["rootBlockDevice"]).toMatchObject({ throughput: 1000, iops: 4000 });
  });
});

describe("options", () => {
  const base = () =>
    readStackFile("single-gpu").sections as Record<string, Record<string, unknown>>;

  it("replicas: an ALB with a /health target group, one target per replica head, HTTPS with a certificate, open only to the given CIDRs", async () => {
    const s = base();
    const { rec, d } = await deploy("rep", {
      ...s,
      target: { ...s["target"], replicas: 2 },
      // An API open to any CIDR needs a key (issue "first contact" 19).
      secrets: { apiKey: "ssm:/qwen/api-key" },
      network: {
        apiCidrs: ["198.51.100.0/24"],
        certificateArn:
          "arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
      },
    });
    expect(
      byType(rec, "aws:ec2/instance:Instance")
        .map((r) => r.name)
        .sort(),
    ).toEqual(["rep-r0-head-instance", "rep-r1-head-instance"]);
    const tg = one(rec, "rep-lb-targets").inputs;
    expect(tg).toMatchObject({
      port: 8000,
      protocol: "HTTP",
      healthCheck: { path: "/health", matcher: "200" },
    });
    expect(
      byType(rec, "aws:lb/targetGroupAttachment:TargetGroupAttachment")
        .map((r) => r.inputs["targetId"])
        .sort(),
    ).toEqual(["rep-r0-head-instance-id", "rep-r1-head-instance-id"]);
    expect(one(rec, "rep-lb-https").inputs).toMatchObject({
      port: 443,
      protocol: "HTTPS",
      certificateArn:
        "arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    });
    expect(one(rec, "rep-lb-http").inputs["defaultActions"][0]["type"]).toBe("redirect");
    expect(one(rec, "rep-lb-alb").inputs["subnets"]).toEqual([
      "subnet-us-east-1a",
      "subnet-us-east-1b",
      "subnet-us-east-1c",
    ]);
    const ingress = byType(rec, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map(
      (r) => [
        r.name,
        r.inputs["fromPort"],
        r.inputs["cidrIpv4"] ?? r.inputs["referencedSecurityGroupId"],
      ],
    );
    expect(ingress.sort()).toEqual([
      ["rep-net-lb-http-0", 80, "198.51.100.0/24"],
      ["rep-net-lb-https-0", 443, "198.51.100.0/24"],
      ["rep-net-nodes-from-lb", 8000, "rep-net-lb-id"],
    ]);
    expect(await value(d.endpoint)).toBe("https://rep-lb-alb.elb.example");
  });

  it("SSH key and CIDRs, spot with a max price, a pinned AMI, SSM-held secrets", async () => {
    const s = base();
    const { rec, d } = await deploy("opt", {
      ...s,
      target: {
        ...s["target"],
        sshPublicKey:
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQtgmczwpmYmk0iuPudO5kd9aJ3+iJsDEG76hL++CJ2 test",
        spot: { enabled: true, maxPriceUsdPerHour: 0.6 },
        amiId: "ami-0fedcba9876543210",
      },
      network: { sshCidrs: ["198.51.100.7/32"] },
      secrets: { hfToken: "ssm:/qwen/hf-token" },
    });
    const i = one(rec, "opt-head-instance").inputs;
    expect(i["ami"]).toBe("ami-0fedcba9876543210");
    expect(rec.invokes.some((x) => x.token === "aws:ssm/getParameter:getParameter")).toBe(false);
    expect(i["keyName"]).toBe("opt-key-kp");
    expect(i["instanceMarketOptions"]).toEqual({
      marketType: "spot",
      spotOptions: {
        spotInstanceType: "one-time",
        instanceInterruptionBehavior: "terminate",
        maxPrice: "0.6",
      },
    });
    expect(one(rec, "opt-net-nodes-ssh-0").inputs).toMatchObject({
      fromPort: 22,
      toPort: 22,
      cidrIpv4: "198.51.100.7/32",
    });
    // The SSM-held token is read by pulumi up on this machine (program.ts), never by the node:
    // the node role gets no ssm:GetParameter, only Session Manager's five actions.
    expect(
      byType(rec, "aws:iam/rolePolicy:RolePolicy").map((r) => [
        r.name,
        JSON.parse(r.inputs["policy"]),
      ]),
    ).toEqual([["opt-node-session-manager", SESSION_MANAGER_POLICY]]);
    expect(await value(d.nodes[0]!.connect)).toBe("ssh ubuntu@203.0.113.11");
    expect(await value(d.tunnelCommand)).toBe(
      "ssh -N -L 8000:localhost:8000 -L 9090:localhost:9090 ubuntu@203.0.113.11",
    );
  });

  it("Debian 12, which ships no SSM agent: cloud-init installs it from the region's own bucket", async () => {
    const s = base();
    const { rec } = await deploy("deb", {
      ...s,
      target: { ...s["target"], region: "eu-west-1", ami: "debian-12" },
    });
    const userData = one(rec, "deb-head-instance").inputs["userData"] as string;
    expect(userData).toContain(`ssh_authorized_keys:\n  - ${MOCK_DEPLOY_PUBLIC_KEY}\n`);
    expect(userData).toContain(
      "https://s3.eu-west-1.amazonaws.com/amazon-ssm-eu-west-1/latest/debian_amd64/amazon-ssm-agent.deb",
    );
    expect(userData).toMatch(
      /runcmd:\n.*\n {2}- \[apt-get, -o, "DPkg::Lock::Timeout=600", install, -y, \/var\/tmp\/amazon-ssm-agent\.deb\]\n {2}- \[systemctl, enable, --now, amazon-ssm-agent\]/,
    );
  });

  it("an S3 weights mirror: the node role may read that prefix and nothing else of S3", async () => {
    const s = base();
    const { rec } = await deploy("s3", {
      ...s,
      provisioning: { weightsSource: "mirror", mirrorUrl: "s3://acme-models/qwen/7b" },
    });
    const policy = JSON.parse(one(rec, "s3-node-weights").inputs["policy"]);
    expect(policy.Statement).toEqual([
      {
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: ["arn:aws:s3:::acme-models/qwen/7b/*"],
      },
      {
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: ["arn:aws:s3:::acme-models"],
        Condition: { StringLike: { "s3:prefix": ["qwen/7b/*"] } },
      },
    ]);
    const { rec: plain } = await deploy("plain", s);
    expect(
      plain.registrations
        .filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")
        .map((r) => r.name),
    ).toEqual(["plain-node-session-manager"]);
  });

  it("GovCloud: every ARN the stack writes is in the stack's partition (aws-us-gov), none hard-coded to aws", async () => {
    const s = base();
    setMockPartition("aws-us-gov");
    try {
      const { rec } = await deploy("gov", {
        ...s,
        target: { ...(s["target"] as object), region: "us-gov-west-1" },
        provisioning: { weightsSource: "mirror", mirrorUrl: "s3://acme-models/qwen/7b" },
      });
      const policies = rec.registrations
        .filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")
        .map((r) => r.inputs["policy"] as string);
      const arns = policies.flatMap((p) => p.match(/arn:[a-z-]+:/g) ?? []);
      expect(arns.length).toBeGreaterThan(0);
      expect(new Set(arns)).toEqual(new Set(["arn:aws-us-gov:"]));
      expect(policies.join("")).toContain("arn:aws-us-gov:s3:::acme-models/qwen/7b/*");
    } finally {
      setMockPartition("aws");
    }
  });

  it("a new VPC and an EFA interface where the instance type has one", async () => {
    const { rec } = await deploy("efa", {
      model: {
        id: "Qwen/Qwen2-VL-72B-Instruct",
        revision: "f400120e59a6196b024298b7d09fb517f742db7d",
      },
      target: {
        kind: "aws",
        region: "eu-west-1",
        instanceType: "p5.48xlarge",
        nodes: 2,
        efa: true,
        vpc: "new",
      },
      vllm: {
        maxModelLen: 32768,
        maxPixels: 2007040,
        tensorParallelSize: 8,
        pipelineParallelSize: 2,
      },
    });
    expect(one(rec, "efa-net-vpc").inputs["cidrBlock"]).toBe("10.42.0.0/16");
    expect(one(rec, "efa-net-subnet-a").inputs).toMatchObject({
      availabilityZone: "eu-west-1b",
      mapPublicIpOnLaunch: true,
    });
    expect(byType(rec, "aws:ec2/internetGateway:InternetGateway")).toHaveLength(1);
    // p5.48xlarge: all 32 EFA cards at launch, through a launch template per node: card 0 an EFA
    // (EFA with ENA), cards 1..31 EFA-only, each at device index 0, in the nodes' subnet and group.
    for (const n of ["head", "worker1"]) {
      const lt = one(rec, `efa-${n}-efa`);
      expect(lt.type).toBe("aws:ec2/launchTemplate:LaunchTemplate");
      const nics = lt.inputs["networkInterfaces"] as Record<string, unknown>[];
      expect(nics).toHaveLength(32);
      expect(nics[0]).toEqual({
        networkCardIndex: 0,
        deviceIndex: 0,
        interfaceType: "efa",
        subnetId: "efa-net-subnet-a-id",
        securityGroups: ["efa-net-nodes-id"],
        deleteOnTermination: "true",
      });
      expect(
        nics.slice(1).map((x) => [x["networkCardIndex"], x["deviceIndex"], x["interfaceType"]]),
      ).toEqual(Array.from({ length: 31 }, (_, k) => [k + 1, 0, "efa-only"]));
      const i = one(rec, `efa-${n}-instance`).inputs;
      expect(i["launchTemplate"]).toEqual({ id: `efa-${n}-efa-id`, version: "1" });
      // EC2 refuses instance-level subnets and groups beside template interfaces.
      expect(i["subnetId"]).toBeUndefined();
      expect(i["vpcSecurityGroupIds"]).toBeUndefined();
      // Several interfaces: no automatic public address; an Elastic IP for SSH, on the primary
      // interface (AssociateAddress refuses an instance id when it has more than one).
      const eip = one(rec, `efa-${n}-ip`);
      expect(eip.type).toBe("aws:ec2/eip:Eip");
      expect(eip.inputs).toEqual({
        domain: "vpc",
        networkInterface: `eni-efa-${n}-instance`,
        tags: expect.objectContaining({ Project: "qwen-vl-deploy", Node: n }),
      });
      expect(eip.inputs["instance"]).toBeUndefined();
    }
    // EFA needs the group's traffic to itself in both directions.
    expect(one(rec, "efa-net-nodes-to-cluster").inputs).toMatchObject({
      ipProtocol: "-1",
      securityGroupId: "efa-net-nodes-id",
      referencedSecurityGroupId: "efa-net-nodes-id",
    });
    expect(rec.invokes.map((x) => x.token)).not.toContain("aws:ec2/getVpcs:getVpcs");
  });

  it("EFA on a single-card type: one EFA interface with a public address; refused on a type without EFA", async () => {
    const s = base();
    const { rec } = await deploy("g6", {
      ...s,
      target: { kind: "aws", region: "us-east-1", instanceType: "g6e.12xlarge", efa: true },
      network: { sshCidrs: ["198.51.100.7/32"] },
    });
    const nics = one(rec, "g6-head-efa").inputs["networkInterfaces"] as Record<string, unknown>[];
    expect(nics).toEqual([
      expect.objectContaining({ interfaceType: "efa", associatePublicIpAddress: "true" }),
    ]);
    expect(byType(rec, "aws:ec2/eip:Eip")).toEqual([]);
    expect(() =>
      planStack({
        ...s,
        target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge", efa: true },
      }),
    ).toThrow(
      /target\.efa: true — g5\.xlarge has no EFA; types with EFA: g4dn\.12xlarge, .*g6\.12xlarge, .*g6e\.12xlarge/,
    );
  });
});

describe("capacity for p5: a reservation or a Capacity Block", () => {
  it("launches into the named reservation; a Capacity Block is its own market type; both refused when inconsistent", async () => {
    const s = {
      model: {
        id: "Qwen/Qwen2-VL-72B-Instruct",
        revision: "f400120e59a6196b024298b7d09fb517f742db7d",
      },
      vllm: { maxModelLen: 32768, tensorParallelSize: 8 },
    };
    const { rec } = await deploy("cb", {
      ...s,
      target: {
        kind: "aws",
        region: "us-east-1",
        instanceType: "p5.48xlarge",
        capacityReservationId: "cr-0123456789abcdef0",
        capacityBlock: true,
      },
    });
    const i = one(rec, "cb-head-instance").inputs;
    expect(i["capacityReservationSpecification"]).toEqual({
      capacityReservationTarget: { capacityReservationId: "cr-0123456789abcdef0" },
    });
    expect(i["instanceMarketOptions"]).toEqual({ marketType: "capacity-block" });
    // In the Capacity Block's own zone (us-east-1f), not the first that offers p5 (us-east-1b):
    // EC2 launches into a reservation only in its zone.
    expect(i["subnetId"]).toBe("subnet-us-east-1f");
    const block = rec.invokes.filter(
      (x) => x.token === "aws:ec2/getCapacityBlockReservation:getCapacityBlockReservation",
    );
    expect(block.map((x) => x.inputs)).toEqual([{ id: "cr-0123456789abcdef0" }]);
    expect(block[0]!.provider).toMatch(/pulumi:providers:aws::cb-aws::/);
    expect(rec.invokes.map((x) => x.token)).not.toContain(
      "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
    );
    expect(byType(rec, "aws:ec2/capacityReservation:CapacityReservation")).toEqual([]);
    // Capacity already bought: no vCPU quota check.
    expect(rec.invokes.map((x) => x.token)).not.toContain(
      "aws:servicequotas/getServiceQuota:getServiceQuota",
    );

    // An On-Demand Capacity Reservation: read as an existing resource (never created), its zone
    // too, here in a new VPC whose subnet is made there.
    const { rec: odcr } = await deploy("odcr", {
      ...s,
      target: {
        kind: "aws",
        region: "eu-west-1",
        instanceType: "p5.48xlarge",
        capacityReservationId: "cr-0fedcba9876543210",
        availabilityZone: "eu-west-1f",
        vpc: "new",
      },
    });
    const read = one(odcr, "odcr-reservation");
    expect(read.type).toBe("aws:ec2/capacityReservation:CapacityReservation");
    expect(read.provider).toMatch(/pulumi:providers:aws::odcr-aws::/);
    expect(one(odcr, "odcr-net-subnet-a").inputs["availabilityZone"]).toBe("eu-west-1f");
    expect(one(odcr, "odcr-head-instance").inputs["capacityReservationSpecification"]).toEqual({
      capacityReservationTarget: { capacityReservationId: "cr-0fedcba9876543210" },
    });
    expect(() =>
      planStack({
        ...s,
        target: {
          kind: "aws",
          region: "us-east-1",
          instanceType: "p5.48xlarge",
          capacityBlock: true,
          spot: { enabled: true },
        },
      }),
    ).toThrow(
      /target\.capacityBlock: true — needs target\.capacityReservationId[\s\S]*target\.spot\.enabled: true — a Capacity Block is paid for up front/,
    );
  });
});

describe("the vCPU quota, checked before any instance", () => {
  it("a quota below the plan's vCPUs stops the deployment with its code and request page; no instance is registered", async () => {
    const rec = installMocks("quota");
    setMockQuotaVcpus(64);
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on("unhandledRejection", onError);
    try {
      const plan = planStack(readStackFile("multi-gpu").sections, { stack: "quota" });
      new AwsDeployment("quota", { plan });
      // The check's failure reaches every instance's image input: Pulumi reports it, once per
      // consumer, and registers none of them.
      await settle(rec);
      expect(String(errors)).toContain(
        'target.instanceType: 2 × g4dn.12xlarge need 96 vCPUs of the EC2 quota "Running On-Demand G and VT instances" (L-DB2E81BA) in us-east-1, whose applied value is 64; nothing was launched.',
      );
      expect(byType(rec, "aws:ec2/instance:Instance")).toEqual([]);
      expect(
        rec.invokes.find((x) => x.token === "aws:servicequotas/getServiceQuota:getServiceQuota")!
          .provider,
      ).toMatch(/pulumi:providers:aws::quota-aws::/);
    } finally {
      setMockQuotaVcpus(1536);
      process.off("unhandledRejection", onError);
    }
  });
});

describe("the operator's own permissions (catalogs/operator-iam.ts, mirrored in the README)", () => {
  it("name every AWS resource type and lookup the tests above register, and nothing they do not", () => {
    expect(recorded.length, "run the whole file: this reads the deployments above").toBeGreaterThan(
      10,
    );
    const used = new Set(
      recorded.flatMap((rec) => [
        ...rec.registrations.map((r) => r.type).filter((t) => !t.startsWith("qwen-vl-deploy:")),
        ...rec.invokes.map((i) => i.token),
      ]),
    );
    expect([...used].sort()).toEqual(Object.keys(OPERATOR_IAM).sort());
    const actions = operatorActions(used);
    for (const a of [
      "iam:PassRole",
      "ec2:GetConsoleOutput",
      "ssm:GetParameter",
      "servicequotas:GetServiceQuota",
      "ec2:DescribeInstanceTypeOfferings",
      "ec2:DescribeCapacityReservations",
      "elasticloadbalancing:CreateLoadBalancer",
    ])
      expect(actions).toContain(a);
    expect(() => operatorActions(["aws:s3/bucket:Bucket"])).toThrow(
      "aws:s3/bucket:Bucket is not in catalogs/operator-iam.ts: add what it needs there",
    );
  });
});
