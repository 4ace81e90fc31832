/**
 * Worker for {@link probeVulkan} (./backend.ts): a worker has its own WebGPU instance, so it
 * can look at the Vulkan adapter without fixing the backend of the main thread. Posts
 * `{ description, vendor, isFallbackAdapter }` or null (no adapter).
 * @module
 */
const adapter = await navigator.gpu?.requestAdapter();
const info = adapter?.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
(self as unknown as Worker).postMessage(
  info
    ? {
      description: info.description,
      vendor: info.vendor,
      isFallbackAdapter: info.isFallbackAdapter ?? false,
    }
    : null,
);
