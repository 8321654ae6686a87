/**
 * The CLI's scout thread starts here (core/params/scout.ts startScout with a boot script): it runs the
 * header worker's bundle with V8's code cache (codeCache.ts), which spares the scout compiling it
 * anew in every process. The scout does all its work while the bundle runs, and writes the cache
 * (when there was none) just before it posts its plan: the analysis ends this thread soon after.
 */
import { workerData } from 'node:worker_threads';
import { runCached } from '../codeCache';

const { boot } = workerData as { boot: { script: string; cacheDir?: string } };
runCached(boot.script, boot.cacheDir, (save) => ((globalThis as { saveCodeCache?: () => void }).saveCodeCache = save));
