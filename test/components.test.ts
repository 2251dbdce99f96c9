/**
 * The AWS components' pure cores, without Pulumi's mocks (as pulumi-eks tests `createCore`): what
 * each component decides from its args, before any resource exists. The classes only turn these
 * into resources; test/aws.test.ts checks that wiring under the mocks.
 */
import { describe, expect, it } from "vitest";
import {
  deploymentSpec,
  nodeUserData,
  rootDisk,
  shellCommand,
  tunnelCommands,
  vcpuQuotaProblem,
  type Access,
} from "../components/aws-deployment";
import {
  efaInterfaceSpecs,
  instanceArgs,
  needsElasticIp,
  type GpuNodeArgs,
} from "../components/gpu-node";
import { healthCheck, listeners } from "../components/load-balancer";
import {
  chooseZone,
  defaultVpc,
  reservationZone,
  securityRules,
  type NetworkArgs,
} from "../components/network";
import { nodeRolePolicies, parseS3 } from "../components/node-role";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";

const tags = { Project: "qwen-vl-deploy" };

describe("Network: security rules", () => {
  const net: NetworkArgs = {
    vpc: "default",
    region: "us-east-1",
    instanceType: "g5.xlarge",
    apiPort: 8000,
    apiCidrs: [],
    publicApiApproved: false,
    sshCidrs: [],
    multiNode: false,
    loadBalanced: false,
    tags,
  };
  const brief = (args: NetworkArgs) =>
    securityRules("n", args).map(
      (r) =>
        `${r.direction} ${r.group} ${r.protocol}${r.port ? `/${r.port}` : ""} ${"cidr" in r ? r.cidr : `group:${r.peer}`}`,
    );

  it("closed by default: only the nodes' egress to the world", () => {
    expect(brief(net)).toEqual(["egress nodes -1 0.0.0.0/0"]);
  });

  it("API CIDRs and SSH on the nodes; members reach each other when multi-node; EFA also sends to itself", () => {
    expect(
      brief({
        ...net,
        apiCidrs: ["198.51.100.0/24"],
        sshCidrs: ["203.0.113.7/32"],
        multiNode: true,
      }),
    ).toEqual([
      "egress nodes -1 0.0.0.0/0",
      "ingress nodes tcp/8000 198.51.100.0/24",
      "ingress nodes tcp/22 203.0.113.7/32",
      "ingress nodes -1 group:nodes",
    ]);
    expect(brief({ ...net, efa: true }).slice(1)).toEqual([
      "ingress nodes -1 group:nodes",
      "egress nodes -1 group:nodes",
    ]);
  });

  it("load balanced: the API on the LB (443 only with HTTPS), the nodes' API port only from the LB", () => {
    const rules = securityRules("n", {
      ...net,
      loadBalanced: true,
      https: true,
      apiCidrs: ["0.0.0.0/0"],
      publicApiApproved: true,
    });
    expect(rules.map((r) => r.name)).toEqual([
      "n-nodes-egress",
      "n-lb-egress",
      "n-nodes-from-lb",
      "n-lb-http-0",
      "n-lb-https-0",
    ]);
    expect(rules.find((r) => r.name === "n-lb-egress")).toMatchObject({
      port: 8000,
      peer: "nodes",
    });
    // A world-open API the config approved is tagged so (the policy pack reads the tag).
    expect(rules.filter((r) => r.tags["PublicApi"] === "approved").map((r) => r.port)).toEqual([
      80, 443,
    ]);
    const closed = securityRules("n", { ...net, loadBalanced: true, apiCidrs: ["0.0.0.0/0"] });
    expect(closed.some((r) => r.tags["PublicApi"])).toBe(false);
    expect(closed.some((r) => r.port === 443)).toBe(false);
  });
});

describe("Network: the zone and the VPC", () => {
  it("takes the first zone that offers the type, checks a named one, and refuses a type offered nowhere", () => {
    expect(chooseZone("us-east-1", "p5.48xlarge", ["us-east-1b", "us-east-1d"])).toBe("us-east-1b");
    expect(chooseZone("us-east-1", "p5.48xlarge", ["us-east-1b", "us-east-1d"], "us-east-1d")).toBe(
      "us-east-1d",
    );
    expect(() =>
      chooseZone("us-east-1", "p5.48xlarge", ["us-east-1b", "us-east-1d"], "us-east-1a"),
    ).toThrow(
      "target.availabilityZone: us-east-1a does not offer p5.48xlarge; zones of us-east-1 that do: us-east-1b, us-east-1d",
    );
    expect(() => chooseZone("eu-north-1", "p5.48xlarge", [])).toThrow(
      "p5.48xlarge is not offered in any availability zone of eu-north-1 (ec2:DescribeInstanceTypeOfferings): pick another region or target.instanceType",
    );
  });

  it("a reservation's zone is the nodes' zone; a different target.availabilityZone or type is refused, each named", () => {
    const block = {
      capacityReservationId: "cr-0123456789abcdef0",
      capacityBlock: true,
      instanceType: "p5.48xlarge",
    };
    const inF = { availabilityZone: "us-east-1f", instanceType: "p5.48xlarge" };
    expect(reservationZone(block, inF)).toBe("us-east-1f");
    expect(reservationZone({ ...block, availabilityZone: "us-east-1f" }, inF)).toBe("us-east-1f");
    expect(() => reservationZone({ ...block, availabilityZone: "us-east-1b" }, inF)).toThrow(
      "target.availabilityZone: us-east-1b — Capacity Block cr-0123456789abcdef0 is in us-east-1f, and EC2 launches into a reservation only in its own zone; set target.availabilityZone: us-east-1f or leave it unset",
    );
    // Both problems at once, for an On-Demand Capacity Reservation.
    const odcr = { ...block, capacityBlock: false, availabilityZone: "us-east-1b" };
    let message = "";
    try {
      reservationZone(odcr, { availabilityZone: "us-east-1f", instanceType: "p4d.24xlarge" });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split("\n")).toEqual([
      "target.instanceType: p5.48xlarge — capacity reservation cr-0123456789abcdef0 reserves p4d.24xlarge; set target.instanceType: p4d.24xlarge or name a reservation for p5.48xlarge",
      "target.availabilityZone: us-east-1b — capacity reservation cr-0123456789abcdef0 is in us-east-1f, and EC2 launches into a reservation only in its own zone; set target.availabilityZone: us-east-1f or leave it unset",
    ]);
  });

  it("an account without a default VPC is told to set target.vpc: new, naming the region", () => {
    expect(defaultVpc("us-east-1", ["vpc-1"])).toBe("vpc-1");
    expect(() => defaultVpc("eu-west-1", [])).toThrow(
      "eu-west-1 has no default VPC: set target.vpc: new (a VPC with a public subnet is made for the nodes)",
    );
  });
});

describe("NodeRole: policies", () => {
  const at = { partition: "aws-us-gov" };

  it("Session Manager: the five actions of AWS's minimal policy (AWSCloud9SSMInstanceProfile), on nothing else", () => {
    const [sm, ...rest] = nodeRolePolicies({});
    expect(rest).toEqual([]);
    expect(sm!.needs).toBe("nothing");
    // AWS's minimal policy, whole: one statement allowing these five actions on "*".
    expect(JSON.stringify(sm!.document(at))).toBe(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation","ssmmessages:CreateControlChannel","ssmmessages:CreateDataChannel","ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel"],"Resource":"*"}]}',
    );
  });

  it("an S3 weights mirror: objects under its prefix, and listing only that prefix", () => {
    const weights = nodeRolePolicies({ weightsMirror: "s3://models/qwen/" }).find(
      (p) => p.name === "weights",
    )!;
    const doc = weights.document({ partition: "aws" }) as {
      Statement: { Action: string[]; Resource: string[]; Condition?: unknown }[];
    };
    expect(doc.Statement.map((x) => `${x.Action.join()} ${x.Resource.join()}`)).toEqual([
      "s3:GetObject arn:aws:s3:::models/qwen/*",
      "s3:ListBucket arn:aws:s3:::models",
    ]);
    expect(doc.Statement[1]!.Condition).toEqual({ StringLike: { "s3:prefix": ["qwen/*"] } });
    expect(parseS3("s3://bucket")).toEqual({ bucket: "bucket", prefix: "" });
    expect(() => parseS3("https://bucket")).toThrow("not an S3 URL: https://bucket");
  });
});

describe("GpuNode: the instance", () => {
  const node: GpuNodeArgs = {
    ami: "ami-1",
    instanceType: "p5.48xlarge",
    subnetId: "subnet-1",
    securityGroupIds: ["sg-1"],
    instanceProfileName: "profile",
    rootVolumeGiB: 400,
    tags,
  };
  const network = { subnetId: "subnet-1", vpcSecurityGroupIds: ["sg-1"] };

  it("IMDSv2 only; an encrypted gp3 root volume deleted with the instance; on-demand by default", () => {
    const i = instanceArgs("x", node, network);
    expect(i.metadataOptions).toEqual({
      httpTokens: "required",
      httpEndpoint: "enabled",
      httpPutResponseHopLimit: 2,
    });
    expect(i.rootBlockDevice).toMatchObject({
      volumeType: "gp3",
      encrypted: true,
      deleteOnTermination: true,
    });
    expect(i.instanceMarketOptions).toBeUndefined();
    expect(i.tags).toEqual({ ...tags, Name: "x" });
  });

  it("spot is one-time and terminated on interruption; a Capacity Block is its own market and wins", () => {
    const spot = instanceArgs("x", { ...node, spot: { maxPriceUsdPerHour: 40 } }, network);
    expect(spot.instanceMarketOptions).toEqual({
      marketType: "spot",
      spotOptions: {
        spotInstanceType: "one-time",
        instanceInterruptionBehavior: "terminate",
        maxPrice: "40",
      },
    });
    const block = instanceArgs(
      "x",
      { ...node, spot: {}, capacityBlock: true, capacityReservationId: "cr-1" },
      network,
    );
    expect(block.instanceMarketOptions).toEqual({ marketType: "capacity-block" });
    expect(block.capacityReservationSpecification).toEqual({
      capacityReservationTarget: { capacityReservationId: "cr-1" },
    });
  });

  it("EFA: one interface per network card, EFA with ENA on card 0, EFA-only after; an Elastic IP past one card", () => {
    const nics = efaInterfaceSpecs(4, "subnet-1", ["sg-1"]);
    expect(nics.map((n) => `${n.networkCardIndex}:${n.deviceIndex}:${n.interfaceType}`)).toEqual([
      "0:0:efa",
      "1:0:efa-only",
      "2:0:efa-only",
      "3:0:efa-only",
    ]);
    expect(nics.some((n) => n.associatePublicIpAddress)).toBe(false);
    expect(efaInterfaceSpecs(1, "subnet-1", ["sg-1"])[0]!.associatePublicIpAddress).toBe("true");
    expect([0, 1, 2, 32].map((efaInterfaces) => needsElasticIp({ efaInterfaces }))).toEqual([
      false,
      false,
      true,
      true,
    ]);
  });
});

describe("LoadBalancer: listeners and health check", () => {
  it("HTTP forwarding without a certificate; with one, HTTPS (TLS 1.3/1.2) and HTTP redirecting to it", () => {
    expect(listeners()).toEqual([
      { name: "http", port: 80, protocol: "HTTP", redirectToHttps: false },
    ]);
    expect(listeners("arn:cert").map((l) => `${l.name} ${l.port} ${l.redirectToHttps}`)).toEqual([
      "https 443 false",
      "http 80 true",
    ]);
    expect(listeners("arn:cert")[0]).toMatchObject({
      certificateArn: "arn:cert",
      sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
    });
    expect(healthCheck(8000)).toMatchObject({ path: "/health", port: "8000", matcher: "200" });
  });
});

describe("AwsDeployment: what it decides from the plan", () => {
  const planOf = (
    stack: string,
    patch: (s: Record<string, Record<string, unknown>>) => void = () => {},
  ) => {
    const sections = structuredClone(readStackFile(stack).sections) as Record<
      string,
      Record<string, unknown>
    >;
    patch(sections);
    const plan = planStack(sections, { stack });
    return { plan, spec: deploymentSpec(stack, plan, plan.aws!) };
  };

  it("single-gpu: one head, closed, reached over SSM; the Deep Learning AMI runs the SSM agent", () => {
    const { spec } = planOf("single-gpu");
    expect(spec.loadBalanced).toBe(false);
    expect(spec.network).toMatchObject({
      multiNode: false,
      apiCidrs: [],
      sshCidrs: [],
      efa: false,
    });
    expect(spec.access.via).toBe("ssm");
    expect(spec.hasSsmAgent).toBe(true);
    expect(spec.nodes.map((n) => n.tags)).toEqual([
      {
        Project: "qwen-vl-deploy",
        Stack: "single-gpu",
        Model: "Qwen/Qwen2-VL-7B-Instruct",
        Role: "head",
        Replica: "0",
        Node: "head",
      },
    ]);
  });

  it("multi-gpu: the plan's multi-node reaches the network (members talk, placement group)", () => {
    const { plan, spec } = planOf("multi-gpu");
    expect(plan.multiNode).toBe(true);
    expect(spec.network.multiNode).toBe(true);
    expect(spec.nodes.map((n) => `${n.name}:${n.role}`)).toEqual(["head:head", "worker1:worker"]);
  });

  it("TP across two nodes with PP 1 is multi-node too: the network lets the members talk", () => {
    const { plan, spec } = planOf("multi-gpu", (s) => {
      s["vllm"] = { ...s["vllm"], tensorParallelSize: 8, pipelineParallelSize: 1 };
      s["model"] = { id: "Qwen/Qwen2-VL-72B-Instruct-AWQ", revision: "0".repeat(40) };
    });
    expect([plan.tensorParallelSize, plan.pipelineParallelSize, plan.nodesPerReplica]).toEqual([
      8, 1, 2,
    ]);
    expect(plan.multiNode).toBe(true);
    expect(spec.network.multiNode).toBe(true);
  });

  it("replicas or a certificate put a load balancer in front; an S3 mirror reaches the role, SSM secrets do not (pulumi up reads them)", () => {
    const { spec } = planOf("single-gpu", (s) => {
      s["network"] = {
        certificateArn:
          "arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
      };
      s["secrets"] = { hfToken: "ssm:/qwen/hf" };
      s["provisioning"] = { weightsSource: "mirror", mirrorUrl: "s3://models/qwen" };
    });
    expect(spec.loadBalanced).toBe(true);
    expect(spec.network.https).toBe(true);
    expect(spec.role).toEqual({
      weightsMirror: "s3://models/qwen",
      tags: { Project: "qwen-vl-deploy", Stack: "single-gpu", Model: "Qwen/Qwen2-VL-7B-Instruct" },
    });
  });
});

describe("AwsDeployment: the vCPU quota", () => {
  const p5 = { name: "Running On-Demand P instances", code: "L-417A185B", vcpus: 384 };

  it("enough applied quota passes; too little names the quota, the need, the limit and where to ask", () => {
    expect(vcpuQuotaProblem(p5, "us-east-1", "p5.48xlarge", 2, 384)).toBeUndefined();
    expect(vcpuQuotaProblem(p5, "us-east-1", "p5.48xlarge", 2, 1000)).toBeUndefined();
    expect(vcpuQuotaProblem(p5, "eu-west-1", "p5.48xlarge", 2, 192)).toBe(
      'target.instanceType: 2 × p5.48xlarge need 384 vCPUs of the EC2 quota "Running On-Demand P instances" (L-417A185B) in eu-west-1, whose applied value is 192; nothing was launched. Request at least 384 (plus the vCPUs of instances of that family already running in eu-west-1, which count against it too): https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-417A185B (in eu-west-1), or aws service-quotas request-service-quota-increase --region eu-west-1 --service-code ec2 --quota-code L-417A185B --desired-value 384',
    );
  });
});

describe("AwsDeployment: access, cloud-init and the root volume", () => {
  const ssh: Access = { via: "ssh", user: "ubuntu", region: "us-east-1", apiPort: 8000 };
  const ssm: Access = { ...ssh, via: "ssm" };
  const head = { publicIp: "203.0.113.9", instanceId: "i-0abc" };

  it("a shell and the tunnel: SSH with both forwards, or an SSM session per port", () => {
    expect(shellCommand(ssh, head)).toBe("ssh ubuntu@203.0.113.9");
    expect(shellCommand(ssm, head)).toBe(
      "aws ssm start-session --region us-east-1 --target i-0abc",
    );
    expect(tunnelCommands(ssh, head)).toEqual({
      tunnelCommand: "ssh -N -L 8000:localhost:8000 -L 9090:localhost:9090 ubuntu@203.0.113.9",
      prometheusUrl: "http://localhost:9090 (through tunnelCommand)",
    });
    const t = tunnelCommands(ssm, head);
    expect(t.tunnelCommand).toBe(
      `aws ssm start-session --region us-east-1 --target i-0abc --document-name AWS-StartPortForwardingSession --parameters '{"portNumber":["8000"],"localPortNumber":["8000"]}'`,
    );
    expect(t.prometheusUrl).toContain(`'{"portNumber":["9090"],"localPortNumber":["9090"]}'`);
  });

  it("cloud-init: the deploy key; without an SSM agent, the agent from the region's bucket in its partition", () => {
    expect(nodeUserData("ssh-ed25519 K", false, "cn-north-1", "amazonaws.com.cn")).toContain(
      "https://s3.cn-north-1.amazonaws.com.cn/amazon-ssm-cn-north-1/latest/debian_amd64/",
    );
    // Ubuntu images run the agent already: nothing more than the key.
    expect(nodeUserData("ssh-ed25519 K", true, "eu-west-1", "amazonaws.com")).toBe(
      "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 K\n",
    );
  });

  it("the root volume: the AMI's snapshot + venv + weights + caches, never below the plan or the stack; fast gp3 for large weights", () => {
    const small = rootDisk({ venvGiB: 25, weightsGiB: 16, cachesGiB: 20 }, 100);
    expect(small.sizeGiB(75)).toBe(136);
    expect(small.sizeGiB(0)).toBe(100);
    expect(small.throughputMiBs).toBeUndefined();
    const large = rootDisk({ venvGiB: 25, weightsGiB: 150, cachesGiB: 20 }, 100, 500);
    expect(large.sizeGiB(75)).toBe(500);
    expect(large).toMatchObject({ throughputMiBs: 1000, iops: 4000 });
  });
});
