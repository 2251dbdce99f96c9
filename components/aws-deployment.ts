/**
 * Everything a plan needs on AWS: a provider for the plan's region, the network, the node role, a key
 * pair (when an SSH key is configured), one GPU node per planned node, and a load balancer when there
 * are replicas. Reads the plan; recomputes nothing.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AMIS } from "../catalogs/amis";
import { INSTANCE_TYPES } from "../catalogs/instances";
import { PORTS } from "../catalogs/ports";
import type { DiskBudget, Plan, PlanNode } from "../plan";
import { GpuNode } from "./gpu-node";
import { LoadBalancer } from "./load-balancer";
import { Network, reservationZone, type NetworkArgs, type ReservationFacts } from "./network";
import { NodeRole, type NodeRoleArgs } from "./node-role";
import type { ProvisionedNode } from "./node-provisioning";
import { ConsoleHostKey, DeployKey } from "./remote-step";

export interface AwsDeploymentArgs {
  /** A plan whose target is AWS (and which fits: the caller refuses others). Required. */
  readonly plan: Plan;
}

export interface NodeOutput {
  readonly name: string;
  readonly role: string;
  readonly replica: number;
  readonly instanceId: pulumi.Output<string>;
  readonly publicIp: pulumi.Output<string>;
  readonly privateIp: pulumi.Output<string>;
  /** How to open a shell on it. */
  readonly connect: pulumi.Output<string>;
}

export const PROJECT_TAG = "qwen-vl-deploy";

export class AwsDeployment extends pulumi.ComponentResource {
  readonly nodes: NodeOutput[];
  /** The API's base URL (for a closed API: the local end of the tunnel). */
  readonly endpoint: pulumi.Output<string>;
  /** Command that opens the tunnel to the API (and Prometheus) on the head, when the API is closed. */
  readonly tunnelCommand: pulumi.Output<string>;
  /** Prometheus on the head's loopback, and how to reach it from here. */
  readonly prometheusUrl: pulumi.Output<string>;
  /**
   * How provisioning reaches each node: SSH to its public address (from `network.sshCidrs` only) as
   * the AMI's user with the deployment's own key, the host key read from the instance's console.
   */
  readonly provisioned: ProvisionedNode[];
  /** The AWS provider for the plan's region (invokes made beside this component use it too). */
  readonly provider: aws.Provider;

  constructor(name: string, args: AwsDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:aws:Deployment", name, {}, opts);
    const plan = args.plan;
    const target = plan.aws;
    if (!target)
      throw new pulumi.ResourceError("AwsDeployment needs a plan with target.kind aws", this);
    const provider = (this.provider = new aws.Provider(
      `${name}-aws`,
      { region: target.region as aws.Region },
      { parent: this },
    ));
    // Components take the provider map; resources and invokes made here take the provider itself.
    const child = { parent: this, providers: { aws: provider } };
    const own = { parent: this, provider };
    const spec = deploymentSpec(name, plan, target);
    const { tags, access } = spec;
    const net = plan.network;
    // A reservation's zone and type, as EC2 has them: the nodes go where the reservation is.
    const reservationId = target.capacityReservationId;
    const reserved = reservationId
      ? readReservation(name, reservationId, target.capacityBlock, own)
      : undefined;
    const network = new Network(
      `${name}-net`,
      {
        ...spec.network,
        ...(reserved && reservationId
          ? {
              reservedZone: reserved.apply((r) => {
                try {
                  return reservationZone(
                    {
                      capacityReservationId: reservationId,
                      capacityBlock: target.capacityBlock,
                      instanceType: target.instanceType,
                      ...(target.availabilityZone
                        ? { availabilityZone: target.availabilityZone }
                        : {}),
                    },
                    r,
                  );
                } catch (e) {
                  throw new pulumi.ResourceError((e as Error).message, this);
                }
              }),
            }
          : {}),
      },
      child,
    );
    const role = new NodeRole(`${name}-node`, spec.role, child);
    const keyPair = target.sshPublicKey
      ? new aws.ec2.KeyPair(`${name}-key`, { publicKey: target.sshPublicKey, tags }, own)
      : undefined;
    const amiSource = AMIS[target.ami];
    const imageId = target.amiId
      ? pulumi.output(target.amiId)
      : aws.ssm.getParameterOutput({ name: amiSource.ssmParameter }, own).value;
    // Every instance takes its image through the vCPU quota check: when the quota is short,
    // preview and up stop with what to request before any instance is launched.
    const quotaChecked = quotaCheck(plan, this, own);
    const ami = pulumi.all([imageId, quotaChecked]).apply(([id]) => id);
    // The root volume: the AMI's own snapshot (the Deep Learning AMI's is tens of GiB, and EC2
    // refuses a volume smaller than its snapshot) plus what the steps write.
    const amiSnapshotGiB = aws.ec2
      .getAmiOutput({ filters: [{ name: "image-id", values: [imageId] }] }, own)
      .apply((image) =>
        Math.max(0, ...image.blockDeviceMappings.map((b) => Number(b.ebs?.["volume_size"] ?? 0))),
      );
    const disk = rootDisk(plan.disk, plan.rootVolumeGiB, target.rootVolumeGiB);
    // The deployment's own SSH key: its public half reaches the nodes through cloud-init (public, not
    // a secret), its private half stays in the state, encrypted.
    const deployKey = new DeployKey(`${name}-deploy-key`, { parent: this });
    const partition = aws.getPartitionOutput({}, own);
    const userData = pulumi
      .all([deployKey.publicKey, partition.dnsSuffix])
      .apply(([key, dnsSuffix]) => nodeUserData(key, spec.hasSsmAgent, target.region, dnsSuffix));
    this.provisioned = [];

    this.nodes = spec.nodes.map((n) => {
      const node = new GpuNode(
        `${name}-${n.name}`,
        {
          ami,
          instanceType: target.instanceType,
          subnetId: network.subnetId,
          securityGroupIds: [network.nodeSecurityGroupId],
          instanceProfileName: role.instanceProfileName,
          ...(keyPair ? { keyName: keyPair.keyName } : {}),
          rootVolumeGiB: amiSnapshotGiB.apply((snap) => disk.sizeGiB(snap)),
          ...(disk.throughputMiBs
            ? { rootThroughputMiBs: disk.throughputMiBs, rootIops: disk.iops }
            : {}),
          ...(network.placementGroupName ? { placementGroup: network.placementGroupName } : {}),
          ...(target.spot?.enabled
            ? {
                spot: {
                  ...(target.spot.maxPriceUsdPerHour
                    ? { maxPriceUsdPerHour: target.spot.maxPriceUsdPerHour }
                    : {}),
                },
              }
            : {}),
          efaInterfaces: spec.efaInterfaces,
          ...(target.capacityReservationId
            ? { capacityReservationId: target.capacityReservationId }
            : {}),
          capacityBlock: target.capacityBlock,
          userData,
          tags: n.tags,
        },
        child,
      );
      const hostKey = new ConsoleHostKey(
        `${name}-${n.name}-hostkey`,
        { region: target.region, instanceId: node.instanceId },
        { parent: this },
      );
      this.provisioned.push({
        name: n.name,
        clusterAddress: node.privateIp,
        connection: pulumi
          .all([node.publicIp, deployKey.privateKey, hostKey.hostKeys])
          .apply(([host, privateKey, hostKeys]) => ({
            host,
            port: PORTS.ssh,
            user: access.user,
            privateKey,
            hostKeys,
          })),
      });
      const connect = pulumi
        .all([node.publicIp, node.instanceId])
        .apply(([publicIp, instanceId]) => shellCommand(access, { publicIp, instanceId }));
      return {
        name: n.name,
        role: n.role,
        replica: n.replica,
        instanceId: node.instanceId,
        publicIp: node.publicIp,
        privateIp: node.privateIp,
        connect,
      };
    });

    const head = this.nodes[0]!;
    const port = plan.apiPort;
    const tunnel = pulumi
      .all([head.publicIp, head.instanceId])
      .apply(([publicIp, instanceId]) => tunnelCommands(access, { publicIp, instanceId }));
    this.tunnelCommand = tunnel.tunnelCommand;
    this.prometheusUrl = tunnel.prometheusUrl;

    if (spec.loadBalanced) {
      const lb = new LoadBalancer(
        `${name}-lb`,
        {
          vpcId: network.vpcId,
          subnetIds: network.lbSubnetIds,
          securityGroupId: network.lbSecurityGroupId!,
          apiPort: port,
          targets: this.nodes.filter((n) => n.role === "head").map((n) => n.instanceId),
          ...(net.certificateArn ? { certificateArn: net.certificateArn } : {}),
          tags,
        },
        child,
      );
      this.endpoint = lb.url;
    } else if (net.apiCidrs.length > 0) {
      this.endpoint = pulumi.interpolate`http://${head.publicIp}:${port}`;
    } else {
      this.endpoint = pulumi.output(`http://localhost:${port}`);
    }

    this.registerOutputs({
      endpoint: this.endpoint,
      tunnelCommand: this.tunnelCommand,
      prometheusUrl: this.prometheusUrl,
      nodes: this.nodes,
    });
  }
}

/**
 * The applied value of the plan's vCPU quota (Service Quotas, by code, or by name where no code
 * is known), held to what the plan needs: resolves when it is enough, fails the deployment with
 * `vcpuQuotaProblem`'s message when not. Instances in a Capacity Block are not checked: the block
 * is capacity already bought, and no source says which quota (if any) they draw on.
 */
function quotaCheck(
  plan: Plan,
  deployment: pulumi.Resource,
  opts: pulumi.InvokeOutputOptions,
): pulumi.Output<true> {
  const quota = plan.quota;
  if (!quota || plan.aws?.capacityBlock) return pulumi.output(true as const);
  return aws.servicequotas
    .getServiceQuotaOutput(
      {
        serviceCode: "ec2",
        ...(quota.code ? { quotaCode: quota.code } : { quotaName: quota.name }),
      },
      opts,
    )
    .apply((applied) => {
      const problem = vcpuQuotaProblem(
        { ...quota, code: quota.code ?? applied.quotaCode },
        plan.aws!.region,
        plan.aws!.instanceType,
        plan.nodes.length,
        applied.value,
      );
      if (problem) throw new pulumi.ResourceError(problem, deployment);
      return true as const;
    });
}

/**
 * What is wrong when the applied vCPU quota is below what the plan's instances need, with the
 * quota's code and where to request more; undefined when it is enough. Only the applied value is
 * compared: vCPUs of instances already running in the region count against the same quota, so
 * enough here can still be too little at launch (the message says so). Pure.
 */
export function vcpuQuotaProblem(
  quota: { readonly name: string; readonly code: string; readonly vcpus: number },
  region: string,
  instanceType: string,
  instances: number,
  appliedVcpus: number,
): string | undefined {
  if (appliedVcpus >= quota.vcpus) return undefined;
  return `target.instanceType: ${instances} × ${instanceType} need ${quota.vcpus} vCPUs of the EC2 quota "${quota.name}" (${quota.code}) in ${region}, whose applied value is ${appliedVcpus}; nothing was launched. Request at least ${quota.vcpus} (plus the vCPUs of instances of that family already running in ${region}, which count against it too): https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/${quota.code} (in ${region}), or aws service-quotas request-service-quota-increase --region ${region} --service-code ec2 --quota-code ${quota.code} --desired-value ${quota.vcpus}`;
}

/**
 * The reservation the nodes launch into, as EC2 has it: a Capacity Block through its data source
 * (aws.ec2.getCapacityBlockReservation); an On-Demand Capacity Reservation, which @pulumi/aws 7.48
 * has no data source for, read as an existing resource (`CapacityReservation.get`: in the state,
 * never created or deleted by the stack). Both are DescribeCapacityReservations.
 */
function readReservation(
  name: string,
  id: string,
  capacityBlock: boolean,
  opts: pulumi.CustomResourceOptions,
): pulumi.Output<ReservationFacts> {
  if (capacityBlock)
    return aws.ec2
      .getCapacityBlockReservationOutput({ id }, opts)
      .apply((r) => ({ availabilityZone: r.availabilityZone, instanceType: r.instanceType }));
  const r = aws.ec2.CapacityReservation.get(`${name}-reservation`, id, undefined, opts);
  return pulumi
    .all([r.availabilityZone, r.instanceType])
    .apply(([availabilityZone, instanceType]) => ({ availabilityZone, instanceType }));
}

/**
 * The nodes' cloud-init: the deployment key's public half, and on images without the SSM agent
 * (Debian) the agent itself, from the region's own bucket as AWS documents for Debian Server
 * ("https://s3.<region>.amazonaws.com/amazon-ssm-<region>/latest/debian_amd64/amazon-ssm-agent.deb"),
 * fetched with the image's python3 (cloud-init runs on it; curl is not promised). Pure.
 */
export function nodeUserData(
  deployPublicKey: string,
  hasSsmAgent: boolean,
  region: string,
  dnsSuffix: string,
): string {
  const lines = ["#cloud-config", "ssh_authorized_keys:", `  - ${deployPublicKey}`];
  if (!hasSsmAgent) {
    const url = `https://s3.${region}.${dnsSuffix}/amazon-ssm-${region}/latest/debian_amd64/amazon-ssm-agent.deb`;
    lines.push(
      "runcmd:",
      `  - [python3, -c, "import urllib.request; urllib.request.urlretrieve('${url}', '/var/tmp/amazon-ssm-agent.deb')"]`,
      // apt, not dpkg: it waits for the dpkg lock first-boot unattended-upgrades may hold.
      '  - [apt-get, -o, "DPkg::Lock::Timeout=600", install, -y, /var/tmp/amazon-ssm-agent.deb]',
      "  - [systemctl, enable, --now, amazon-ssm-agent]",
      "  - [rm, -f, /var/tmp/amazon-ssm-agent.deb]",
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * The root volume for a node: the AMI's snapshot + the venv + the weights + caches, never below the
 * plan's figure or the stack's `target.rootVolumeGiB`; and gp3 throughput for large weights, which
 * vLLM reads at every start (gp3's baseline 125 MiB/s reads 150 GiB of 72B weights in 20 minutes;
 * 1000 MiB/s, gp3's maximum, in under 3; it needs ≥ 4000 IOPS: AWS EBS volume types). Pure.
 */
export function rootDisk(
  disk: DiskBudget,
  plannedGiB: number,
  configuredGiB?: number,
): { sizeGiB: (amiSnapshotGiB: number) => number; throughputMiBs?: number; iops?: number } {
  const large = disk.weightsGiB >= 40;
  return {
    sizeGiB: (snap) =>
      Math.max(
        configuredGiB ?? 0,
        plannedGiB,
        Math.ceil(snap + disk.venvGiB + disk.weightsGiB + disk.cachesGiB),
      ),
    ...(large ? { throughputMiBs: 1000, iops: 4000 } : {}),
  };
}

/** How a person reaches the nodes: SSH with the stack's key pair, else SSM Session Manager. */
export interface Access {
  readonly via: "ssh" | "ssm";
  /** The AMI's login user (catalogs/amis.ts). */
  readonly user: string;
  readonly region: string;
  /** The API port on the head. */
  readonly apiPort: number;
}

/** A node as a person addresses it. */
export interface NodeAddress {
  readonly publicIp: string;
  readonly instanceId: string;
}

/** Everything the deployment decides from the plan, before any resource exists. Pure. */
export interface DeploymentSpec {
  readonly tags: Readonly<Record<string, string>>;
  /** Replicas, or TLS (vLLM serves plain HTTP): an Application Load Balancer in front. */
  readonly loadBalanced: boolean;
  readonly network: NetworkArgs;
  readonly role: NodeRoleArgs;
  /** EFA interfaces per node: every one the type takes when target.efa (the plan refuses EFA on a type without it). */
  readonly efaInterfaces: number;
  /** The image runs the SSM agent (the catalog says so, or a pinned AMI is trusted to): cloud-init need not install it. */
  readonly hasSsmAgent: boolean;
  readonly access: Access;
  readonly nodes: readonly {
    name: string;
    role: PlanNode["role"];
    replica: number;
    tags: Record<string, string>;
  }[];
}

export function deploymentSpec(
  name: string,
  plan: Plan,
  target: NonNullable<Plan["aws"]>,
): DeploymentSpec {
  const net = plan.network;
  const tags = { Project: PROJECT_TAG, Stack: plan.stack ?? name, Model: plan.model.id };
  const loadBalanced = plan.replicas > 1 || Boolean(net.certificateArn);
  const mirror =
    plan.provisioning.weightsSource === "mirror" ? plan.provisioning.mirrorUrl : undefined;
  return {
    tags,
    loadBalanced,
    network: {
      vpc: target.vpc,
      region: target.region,
      instanceType: target.instanceType,
      ...(target.availabilityZone ? { availabilityZone: target.availabilityZone } : {}),
      apiPort: plan.apiPort,
      apiCidrs: net.apiCidrs,
      publicApiApproved: net.allowPublicApi && Boolean(plan.secrets.apiKey),
      sshCidrs: net.sshCidrs,
      multiNode: plan.multiNode,
      efa: target.efa,
      loadBalanced,
      https: Boolean(net.certificateArn),
      tags,
    },
    // No SSM grant for "ssm:" secrets: pulumi up reads them here (program.ts) and writes them to
    // the node's secrets file; nothing on the node reads SSM.
    role: {
      tags,
      ...(mirror?.startsWith("s3://") ? { weightsMirror: mirror } : {}),
    },
    efaInterfaces: target.efa ? INSTANCE_TYPES.get(target.instanceType)!.efaInterfaces : 0,
    hasSsmAgent: AMIS[target.ami].ssmAgent || target.amiId !== undefined,
    access: {
      via: target.sshPublicKey && net.sshCidrs.length > 0 ? "ssh" : "ssm",
      user: AMIS[target.ami].user,
      region: target.region,
      apiPort: plan.apiPort,
    },
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      replica: n.replica,
      tags: { ...tags, Role: n.role, Replica: String(n.replica), Node: n.name },
    })),
  };
}

/** The command that opens a shell on a node. Pure. */
export function shellCommand(a: Access, node: NodeAddress): string {
  return a.via === "ssh"
    ? `ssh ${a.user}@${node.publicIp}`
    : `aws ssm start-session --region ${a.region} --target ${node.instanceId}`;
}

/**
 * The tunnel to the head's API (and Prometheus): one SSH with two forwards; over SSM one port
 * forwarding session per port (AWS-StartPortForwardingSession carries one), so Prometheus gets its
 * own command. Pure.
 */
export function tunnelCommands(
  a: Access,
  head: NodeAddress,
): { tunnelCommand: string; prometheusUrl: string } {
  const prometheus = `http://localhost:${PORTS.prometheus}`;
  if (a.via === "ssh")
    return {
      tunnelCommand: `ssh -N -L ${a.apiPort}:localhost:${a.apiPort} -L ${PORTS.prometheus}:localhost:${PORTS.prometheus} ${a.user}@${head.publicIp}`,
      prometheusUrl: `${prometheus} (through tunnelCommand)`,
    };
  const forward = (p: number) =>
    `aws ssm start-session --region ${a.region} --target ${head.instanceId} --document-name AWS-StartPortForwardingSession --parameters '{"portNumber":["${p}"],"localPortNumber":["${p}"]}'`;
  return {
    tunnelCommand: forward(a.apiPort),
    prometheusUrl: `${prometheus} (open it with: ${forward(PORTS.prometheus)})`,
  };
}
