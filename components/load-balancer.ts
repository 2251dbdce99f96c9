/**
 * Replicas behind an Application Load Balancer: a target group on the vLLM port whose health check
 * is vLLM's /health, each replica's head registered, and a listener reachable only from the CIDRs
 * the network component allowed (HTTPS when a certificate is configured).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PORTS } from "../catalogs/ports";

export interface LoadBalancerArgs {
  /** The VPC (Network.vpcId). Required. */
  readonly vpcId: pulumi.Input<string>;
  /** Two subnets in two zones, as an ALB needs (Network.lbSubnetIds). Required. */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** The load balancer's security group (Network.lbSecurityGroupId). Required. */
  readonly securityGroupId: pulumi.Input<string>;
  /** vLLM's port on the targets (the plan's API port), health-checked on /health. Required. */
  readonly apiPort: number;
  /** Instance ids of each replica's head node. Required (one or more). */
  readonly targets: readonly pulumi.Input<string>[];
  /** ACM certificate ARN: HTTPS on 443 (and HTTP on 80 redirects). Default: HTTP on 80. */
  readonly certificateArn?: string;
  /** Tags of every resource. Required (the deployment's). */
  readonly tags: Readonly<Record<string, string>>;
}

export class LoadBalancer extends pulumi.ComponentResource {
  readonly dnsName: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: LoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:aws:LoadBalancer", name, {}, opts);
    const parent = { parent: this };
    const lb = new aws.lb.LoadBalancer(
      `${name}-alb`,
      {
        loadBalancerType: "application",
        internal: false,
        securityGroups: [args.securityGroupId],
        subnets: args.subnetIds,
        idleTimeout: 600,
        tags: args.tags,
      },
      parent,
    );
    const tg = new aws.lb.TargetGroup(
      `${name}-targets`,
      {
        vpcId: args.vpcId,
        port: args.apiPort,
        protocol: "HTTP",
        targetType: "instance",
        healthCheck: healthCheck(args.apiPort),
        tags: args.tags,
      },
      parent,
    );
    args.targets.forEach(
      (target, i) =>
        new aws.lb.TargetGroupAttachment(
          `${name}-target-${i}`,
          { targetGroupArn: tg.arn, targetId: target, port: args.apiPort },
          parent,
        ),
    );
    for (const l of listeners(args.certificateArn))
      new aws.lb.Listener(
        `${name}-${l.name}`,
        {
          loadBalancerArn: lb.arn,
          port: l.port,
          protocol: l.protocol,
          ...(l.certificateArn ? { certificateArn: l.certificateArn, sslPolicy: l.sslPolicy } : {}),
          defaultActions: [
            l.redirectToHttps
              ? {
                  type: "redirect",
                  redirect: {
                    port: String(PORTS.https),
                    protocol: "HTTPS",
                    statusCode: "HTTP_301",
                  },
                }
              : { type: "forward", targetGroupArn: tg.arn },
          ],
          tags: args.tags,
        },
        parent,
      );
    this.dnsName = lb.dnsName;
    this.url = pulumi.interpolate`${args.certificateArn ? "https" : "http"}://${lb.dnsName}`;
    this.registerOutputs({ dnsName: this.dnsName, url: this.url });
  }
}

/**
 * The target group's health check: vLLM's own /health on its port, 200 when the engine serves;
 * every 15 s, healthy after 2 answers, out after 3 misses. Pure.
 */
export function healthCheck(apiPort: number) {
  return {
    path: "/health",
    port: String(apiPort),
    protocol: "HTTP",
    matcher: "200",
    interval: 15,
    timeout: 5,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
  };
}

export interface ListenerSpec {
  /** The listener's name after the component's ("https", "http"). */
  readonly name: string;
  readonly port: number;
  readonly protocol: "HTTP" | "HTTPS";
  readonly certificateArn?: string;
  /** TLS 1.3 with 1.2 (ELBSecurityPolicy-TLS13-1-2-2021-06, ELB's recommended policy). */
  readonly sslPolicy?: string;
  /** Answers with a 301 to HTTPS instead of forwarding to the targets. */
  readonly redirectToHttps: boolean;
}

/**
 * The listeners: with a certificate, HTTPS on 443 forwarding to the targets and HTTP on 80
 * redirecting to it; without, HTTP on 80 forwarding. Pure.
 */
export function listeners(certificateArn?: string): ListenerSpec[] {
  const http = { name: "http", port: PORTS.http, protocol: "HTTP" } as const;
  if (!certificateArn) return [{ ...http, redirectToHttps: false }];
  return [
    {
      name: "https",
      port: PORTS.https,
      protocol: "HTTPS",
      certificateArn,
      sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
      redirectToHttps: false,
    },
    { ...http, redirectToHttps: true },
  ];
}
