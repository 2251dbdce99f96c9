// Policy pack entry: `pulumi preview --policy-pack policy` (the rules live in policies.ts).
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("qwen-vl-deploy-security", { policies });
