/**
 * Cnn model builder (work in progress).
 *
 * @example
 * ```ts ignore
 * const model = buildCnn(gpu, cfg, data, densities);
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import type { TrainConfig } from "../train/config.ts";
import type { Sequential } from "./mlp.ts";
import type { DataShape } from "./models.ts";

/** Builds the cnn model. */
export function buildCnn(
  _gpu: Gpu,
  _cfg: TrainConfig,
  _data: DataShape,
  _densities: number[],
): Sequential {
  throw new FiligreeError('model "cnn" is not implemented yet');
}
