// Imported first by extension.ts, so its body runs before any other module of the bundle is
// evaluated: activate() then reports what module evaluation and activate() cost, in wall time and
// in CPU time of the extension host thread. CPU time stays meaningful on a busy machine, where wall
// time measures the machine more than the extension. The gap between the end of module evaluation
// and the call of activate() belongs to the host (it may run other extensions) and is left out.

/**
 * CPU time of the extension host's main thread (Node ≥ 23.9 has process.threadCpuUsage; the
 * code-server host runs Node 24), else of the whole process.
 */
function threadCpuMs(): number {
  const p = process as NodeJS.Process & { threadCpuUsage?: () => NodeJS.CpuUsage };
  const c = p.threadCpuUsage ? p.threadCpuUsage() : process.cpuUsage();
  return (c.user + c.system) / 1000;
}
const cpuKind = (process as { threadCpuUsage?: unknown }).threadCpuUsage ? 'host thread' : 'host process';

/** A moment: wall clock (performance.now) and CPU time, in ms. */
export interface Mark {
  wall: number;
  cpu: number;
}

export function mark(): Mark {
  return { wall: performance.now(), cpu: threadCpuMs() };
}

/** When the bundle started evaluating its modules. */
export const moduleStart = mark();

/**
 * "module evaluation 4.1 ms (3.9 ms CPU) + activate 2.0 ms (1.8 ms CPU) = 6.1 ms wall, 5.7 ms CPU
 * (host thread)" from the marks taken when module evaluation ended and activate() began.
 */
export function activationSummary(evaluated: Mark, activateStart: Mark): string {
  const end = mark();
  const evalWall = evaluated.wall - moduleStart.wall;
  const evalCpu = evaluated.cpu - moduleStart.cpu;
  const actWall = end.wall - activateStart.wall;
  const actCpu = end.cpu - activateStart.cpu;
  const f = (x: number): string => x.toFixed(1);
  return `module evaluation ${f(evalWall)} ms (${f(evalCpu)} ms CPU) + activate ${f(actWall)} ms (${f(actCpu)} ms CPU) = ${f(evalWall + actWall)} ms wall, ${f(evalCpu + actCpu)} ms CPU (${cpuKind})`;
}
