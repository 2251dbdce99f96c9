/**
 * Where the nodes live and who may reach them. Closed by default: nothing inbound but what the
 * config names (API and SSH CIDRs), traffic between cluster members through a self-referencing rule
 * (Ray and NCCL use ports no list can name; vLLM/Ray traffic is unencrypted and can run code, so it
 * stays inside the group), and a cluster placement group for multi-node stacks.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalogs/ports";
import { exposure } from "../config/cidr";

/** The two security groups: the nodes', and the load balancer's when there is one. */
export type SecurityGroupRole = "nodes" | "lb";

/** One security-group rule: a port (or all traffic) from or to a CIDR or one of the two groups. */
export type SecurityRule = {
  /** The rule's resource name. */
  readonly name: string;
  readonly group: SecurityGroupRole;
  readonly direction: "ingress" | "egress";
  /** "tcp" on `port`, or "-1": all traffic, every port. */
  readonly protocol: "tcp" | "-1";
  readonly port?: number;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
} & ({ readonly cidr: string } | { readonly peer: SecurityGroupRole });

export interface NetworkArgs {
  /** "default": the account's default VPC; "new": a VPC with public subnets made here. Required. */
  readonly vpc: "default" | "new";
  /** The stack's region (the provider's): zones are looked up there. Required. */
  readonly region: string;
  /**
   * Availability zone for the nodes (placement groups live in one zone). Default: the first zone,
   * in name order, where the region offers `instanceType` (AZ letters differ per account, and GPU
   * types are offered in some zones only).
   */
  readonly availabilityZone?: string;
  /**
   * The zone of the capacity reservation (or Capacity Block) the nodes launch into, checked against
   * `availabilityZone` by `reservationZone`: EC2 launches into a reservation only in its own zone.
   * Default: none (the zone is chosen as above).
   */
  readonly reservedZone?: pulumi.Input<string>;
  /** The nodes' instance type, for the zone choice. Required. */
  readonly instanceType: string;
  /** Port the vLLM API listens on (the plan's apiPort). Required. */
  readonly apiPort: number;
  /** CIDRs allowed to the API (on the nodes, or on the load balancer when there is one). Default: none. */
  readonly apiCidrs: readonly string[];
  /** The config allows apiCidrs open to the world (config/cidr.ts) on the API (and an API key is set): tag the rule as approved. Required. */
  readonly publicApiApproved: boolean;
  /** CIDRs allowed to SSH. Default: none (SSM Session Manager). */
  readonly sshCidrs: readonly string[];
  /** Nodes of one replica talk to each other (the plan's multiNode): self-referencing rule + placement group. Required. */
  readonly multiNode: boolean;
  /**
   * The nodes use EFA: the group must also allow all outbound traffic to itself ("An EFA requires a
   * security group that allows all inbound and outbound traffic to and from the security group
   * itself", AWS efa-start-nccl.html; EFA's traffic does not match a CIDR rule). Default: false.
   */
  readonly efa?: boolean;
  /** Replicas sit behind a load balancer: a second subnet (ALBs need two zones) and an LB group. Required. */
  readonly loadBalanced: boolean;
  /** The load balancer serves HTTPS (a certificate is configured): 443 opens only then. Default: false. */
  readonly https?: boolean;
  /** Tags of every resource. Required (the deployment's). */
  readonly tags: Readonly<Record<string, string>>;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  /** Subnet of the nodes. */
  readonly subnetId: pulumi.Output<string>;
  /** Subnets for the load balancer (two zones). */
  readonly lbSubnetIds: pulumi.Output<string[]>;
  readonly nodeSecurityGroupId: pulumi.Output<string>;
  readonly lbSecurityGroupId?: pulumi.Output<string>;
  readonly placementGroupName?: pulumi.Output<string>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:aws:Network", name, {}, opts);
    const parent = { parent: this };
    // What to do, said against this component (pulumi.ResourceError), not as a stack trace.
    const scoped = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new pulumi.ResourceError((e as Error).message, this);
      }
    };
    // A reservation's zone offers its type by definition: no offerings to look up then.
    const zone: pulumi.Output<string> = args.reservedZone
      ? pulumi.output(args.reservedZone)
      : aws.ec2
          .getInstanceTypeOfferingsOutput(
            {
              locationType: "availability-zone",
              filters: [{ name: "instance-type", values: [args.instanceType] }],
            },
            parent,
          )
          .locations.apply((zones) =>
            scoped(() =>
              chooseZone(args.region, args.instanceType, [...zones].sort(), args.availabilityZone),
            ),
          );
    // An ALB needs a second zone; it need not offer the GPU type.
    const secondZone = pulumi
      .all([zone, aws.getAvailabilityZonesOutput({ state: "available" }, parent).names])
      .apply(([z, names]) => [...names].sort().find((n) => n !== z) ?? z);

    if (args.vpc === "new") {
      const vpc = new aws.ec2.Vpc(
        `${name}-vpc`,
        {
          cidrBlock: "10.42.0.0/16",
          enableDnsHostnames: true,
          enableDnsSupport: true,
          tags: { ...args.tags, Name: `${name}-vpc` },
        },
        parent,
      );
      const igw = new aws.ec2.InternetGateway(
        `${name}-igw`,
        { vpcId: vpc.id, tags: args.tags },
        parent,
      );
      const routes = new aws.ec2.RouteTable(
        `${name}-routes`,
        { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: args.tags },
        parent,
      );
      const subnet = (suffix: string, cidr: string, az: pulumi.Input<string>) => {
        const s = new aws.ec2.Subnet(
          `${name}-${suffix}`,
          {
            vpcId: vpc.id,
            cidrBlock: cidr,
            availabilityZone: az,
            mapPublicIpOnLaunch: true,
            tags: { ...args.tags, Name: `${name}-${suffix}` },
          },
          parent,
        );
        new aws.ec2.RouteTableAssociation(
          `${name}-${suffix}-routes`,
          { subnetId: s.id, routeTableId: routes.id },
          parent,
        );
        return s;
      };
      const a = subnet("subnet-a", "10.42.0.0/20", zone);
      const b = args.loadBalanced ? subnet("subnet-b", "10.42.16.0/20", secondZone) : undefined;
      this.vpcId = vpc.id;
      this.subnetId = a.id;
      this.lbSubnetIds = b ? pulumi.all([a.id, b.id]) : pulumi.output([a.id]).apply((x) => [...x]);
    } else {
      // Accounts made since 2013 have a default VPC, but it can be deleted: say what to do then.
      const defaults = aws.ec2.getVpcsOutput(
        { filters: [{ name: "is-default", values: ["true"] }] },
        parent,
      );
      const vpc = {
        id: defaults.ids.apply((ids) => scoped(() => defaultVpc(args.region, ids))),
      };
      this.vpcId = vpc.id;
      const inZone = aws.ec2.getSubnetsOutput(
        {
          filters: [
            { name: "vpc-id", values: [vpc.id] },
            { name: "default-for-az", values: ["true"] },
            { name: "availability-zone", values: [zone] },
          ],
        },
        parent,
      );
      this.subnetId = pulumi.all([inZone.ids, zone]).apply(([ids, z]) => {
        if (ids.length === 0)
          throw new pulumi.ResourceError(
            `the default VPC has no default subnet in ${z}; set target.availabilityZone or target.vpc: new`,
            this,
          );
        return ids[0]!;
      });
      const all = aws.ec2.getSubnetsOutput(
        {
          filters: [
            { name: "vpc-id", values: [vpc.id] },
            { name: "default-for-az", values: ["true"] },
          ],
        },
        parent,
      );
      this.lbSubnetIds = all.ids.apply((ids) => [...ids].sort());
    }

    const groupIds: Partial<Record<SecurityGroupRole, pulumi.Output<string>>> = {
      nodes: new aws.ec2.SecurityGroup(
        `${name}-nodes`,
        {
          vpcId: this.vpcId,
          description: "qwen-vl-deploy GPU nodes: closed but for the configured CIDRs",
          tags: { ...args.tags, Name: `${name}-nodes` },
        },
        parent,
      ).id,
    };
    if (args.loadBalanced)
      groupIds.lb = new aws.ec2.SecurityGroup(
        `${name}-lb`,
        {
          vpcId: this.vpcId,
          description: "qwen-vl-deploy load balancer: the API for the configured CIDRs",
          tags: { ...args.tags, Name: `${name}-lb` },
        },
        parent,
      ).id;
    this.nodeSecurityGroupId = groupIds.nodes!;
    this.lbSecurityGroupId = groupIds.lb;
    // securityRules names the LB's group only when there is a load balancer (components.test.ts).
    const group = (role: SecurityGroupRole) => {
      const id = groupIds[role];
      if (!id)
        throw new pulumi.ResourceError(`a rule names the ${role} group, which is not made`, this);
      return id;
    };
    for (const rule of securityRules(name, args)) {
      const inputs = {
        securityGroupId: group(rule.group),
        ipProtocol: rule.protocol,
        ...(rule.port !== undefined ? { fromPort: rule.port, toPort: rule.port } : {}),
        ...("cidr" in rule
          ? { cidrIpv4: rule.cidr }
          : { referencedSecurityGroupId: group(rule.peer) }),
        description: rule.description,
        tags: rule.tags,
      };
      if (rule.direction === "ingress")
        new aws.vpc.SecurityGroupIngressRule(rule.name, inputs, parent);
      else new aws.vpc.SecurityGroupEgressRule(rule.name, inputs, parent);
    }
    if (args.multiNode) {
      const pg = new aws.ec2.PlacementGroup(
        `${name}-placement`,
        { strategy: "cluster", tags: args.tags },
        parent,
      );
      this.placementGroupName = pg.name;
    }

    this.registerOutputs({
      vpcId: this.vpcId,
      subnetId: this.subnetId,
      lbSubnetIds: this.lbSubnetIds,
      nodeSecurityGroupId: this.nodeSecurityGroupId,
      lbSecurityGroupId: this.lbSecurityGroupId,
      placementGroupName: this.placementGroupName,
    });
  }
}

/**
 * The nodes' zone: the one the stack names (it must offer the type), else the first offering one.
 * Pure; the offerings come from `ec2:DescribeInstanceTypeOfferings`.
 */
export function chooseZone(
  region: string,
  instanceType: string,
  offered: readonly string[],
  wanted?: string,
): string {
  if (offered.length === 0)
    throw new Error(
      `${instanceType} is not offered in any availability zone of ${region} (ec2:DescribeInstanceTypeOfferings): pick another region or target.instanceType`,
    );
  if (wanted && !offered.includes(wanted))
    throw new Error(
      `target.availabilityZone: ${wanted} does not offer ${instanceType}; zones of ${region} that do: ${offered.join(", ")}`,
    );
  return wanted ?? offered[0]!;
}

/** What EC2 says of the reservation the nodes launch into (DescribeCapacityReservations). */
export interface ReservationFacts {
  readonly availabilityZone: string;
  readonly instanceType: string;
}

/**
 * The nodes' zone when they launch into a capacity reservation or Capacity Block: the
 * reservation's own (an instance launches only into a reservation that "has matching attributes
 * (instance type, platform, Availability Zone, and tenancy)", EC2 User Guide,
 * capacity-reservations-launch.html), which must then be the stack's `target.availabilityZone`
 * when one is set; and the reservation must be for the stack's type. Pure.
 */
export function reservationZone(
  target: {
    readonly capacityReservationId: string;
    readonly capacityBlock: boolean;
    readonly instanceType: string;
    readonly availabilityZone?: string;
  },
  reservation: ReservationFacts,
): string {
  const what = target.capacityBlock ? "Capacity Block" : "capacity reservation";
  const problems: string[] = [];
  if (reservation.instanceType !== target.instanceType)
    problems.push(
      `target.instanceType: ${target.instanceType} — ${what} ${target.capacityReservationId} reserves ${reservation.instanceType}; set target.instanceType: ${reservation.instanceType} or name a reservation for ${target.instanceType}`,
    );
  if (target.availabilityZone && target.availabilityZone !== reservation.availabilityZone)
    problems.push(
      `target.availabilityZone: ${target.availabilityZone} — ${what} ${target.capacityReservationId} is in ${reservation.availabilityZone}, and EC2 launches into a reservation only in its own zone; set target.availabilityZone: ${reservation.availabilityZone} or leave it unset`,
    );
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return reservation.availabilityZone;
}

/** The default VPC among `ids` (ec2:DescribeVpcs, is-default), or what to do without one. Pure. */
export function defaultVpc(region: string, ids: readonly string[]): string {
  if (ids.length === 0)
    throw new Error(
      `${region} has no default VPC: set target.vpc: new (a VPC with a public subnet is made for the nodes)`,
    );
  return ids[0]!;
}

/**
 * Every rule of the nodes' (and load balancer's) security groups, from the args. Pure. Egress: the
 * world for the nodes (packages, weights, AWS APIs); the LB only to vLLM on the nodes. Ingress:
 * the API from `apiCidrs` (on the LB, 80 and 443 with HTTPS, when load balanced; else the API port
 * on the nodes); SSH from `sshCidrs`; all traffic between members when multi-node or EFA, and with
 * EFA all traffic to the group itself (AWS efa-start-nccl.html). World-open API rules are tagged
 * `PublicApi: approved` when the config approved them.
 */
export function securityRules(name: string, args: NetworkArgs): SecurityRule[] {
  const approval: Record<string, string> =
    args.publicApiApproved && exposure(args.apiCidrs).open ? { PublicApi: "approved" } : {};
  const api = (group: SecurityGroupRole, suffix: string, port: number, description: string) =>
    args.apiCidrs.map((cidr, i): SecurityRule => ({
      name: `${name}-${group}-${suffix}-${i}`,
      group,
      direction: "ingress",
      protocol: "tcp",
      port,
      cidr,
      description,
      tags: { ...args.tags, ...approval },
    }));
  const rules: SecurityRule[] = [
    {
      name: `${name}-nodes-egress`,
      group: "nodes",
      direction: "egress",
      protocol: "-1",
      cidr: "0.0.0.0/0",
      description: "packages, weights, AWS APIs",
      tags: args.tags,
    },
  ];
  if (args.loadBalanced) {
    rules.push(
      {
        name: `${name}-lb-egress`,
        group: "lb",
        direction: "egress",
        protocol: "tcp",
        port: args.apiPort,
        peer: "nodes",
        description: "to vLLM on the nodes",
        tags: args.tags,
      },
      {
        name: `${name}-nodes-from-lb`,
        group: "nodes",
        direction: "ingress",
        protocol: "tcp",
        port: args.apiPort,
        peer: "lb",
        description: "vLLM from the load balancer",
        tags: args.tags,
      },
      ...api("lb", "http", PORTS.http, "API over HTTP"),
      ...(args.https ? api("lb", "https", PORTS.https, "API over HTTPS") : []),
    );
  } else {
    rules.push(...api("nodes", "api", args.apiPort, "vLLM API"));
  }
  rules.push(
    ...args.sshCidrs.map((cidr, i): SecurityRule => ({
      name: `${name}-nodes-ssh-${i}`,
      group: "nodes",
      direction: "ingress",
      protocol: "tcp",
      port: PORTS.ssh,
      cidr,
      description: "SSH",
      tags: args.tags,
    })),
  );
  const self = (direction: SecurityRule["direction"], suffix: string, description: string) =>
    rules.push({
      name: `${name}-nodes-${suffix}`,
      group: "nodes",
      direction,
      protocol: "-1",
      peer: "nodes",
      description,
      tags: args.tags,
    });
  if (args.multiNode || args.efa)
    self("ingress", "from-cluster", "Ray, NCCL and exporters between cluster members");
  if (args.efa) self("egress", "to-cluster", "EFA: all traffic to the group itself");
  return rules;
}
