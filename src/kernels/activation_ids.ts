/**
 * Activation ids shared by every kernel that applies an activation (element-wise kernels and
 * fused epilogues), and the helper that prepends the WGSL function library to a shader.
 *
 * @example
 * ```ts
 * import { activationId, withActivations } from "./activation_ids.ts";
 * console.log(activationId("relu")); // 1
 * const code = withActivations("// my kernel");
 * console.log(code.includes("fn act_forward")); // true
 * ```
 * @module
 */
import fns from "../../shaders/activation_fns.wgsl" with { type: "text" };
import { FiligreeError } from "../gpu/mod.ts";

/** Activation name -> id used in WGSL (`ACT_*` in shaders/activation_fns.wgsl). */
export const ACTIVATION_IDS = {
  identity: 0,
  relu: 1,
} as const;

/** A scalar activation the kernels know by id. */
export type ActivationName = keyof typeof ACTIVATION_IDS;

/** The id of an activation, or a one-line error listing the allowed names. */
export function activationId(name: string): number {
  const id = (ACTIVATION_IDS as Record<string, number>)[name];
  if (id === undefined) {
    throw new FiligreeError(`unknown activation "${name}"; allowed: ${Object.keys(ACTIVATION_IDS).join(", ")}`);
  }
  return id;
}

/** Prepends the activation function library to a kernel's WGSL. */
export function withActivations(code: string): string {
  return fns + "\n" + code;
}
