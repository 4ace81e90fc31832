/**
 * Lstm model builder (work in progress).
 *
 * @example
 * ```ts ignore
 * const model = buildLstm(gpu, cfg, data, densities);
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import type { TrainConfig } from "../train/config.ts";
import type { Sequential } from "./mlp.ts";
import type { DataShape } from "./models.ts";

/** Builds the lstm model. */
export function buildLstm(
  _gpu: Gpu,
  _cfg: TrainConfig,
  _data: DataShape,
  _densities: number[],
): Sequential {
  throw new FiligreeError('model "lstm" is not implemented yet');
}
