// A trace family derived from the core family's own tensor list (src/core/config/families): the
// roles the shared helpers put on each TensorSpec (attn_q…, mlp_gate…, embedding, final_norm) plus
// components (router, shared_experts, dense_mlp, norm) say where every block's weights are, so a
// family whose blocks are standard (pre-norm GQA/MHA attention with optional q/k norms, biases,
// sliding windows; a router the core describes; per-expert SwiGLU experts; shared experts; dense
// layers) traces without a second description in src/engine.
import { EXPERT_PLACEHOLDER, withGroupedExperts } from '../../core/config/families/common';
import { familyFor } from '../../core/config/registry';
import type { FamilySpec, MoeConfig, TensorSpec } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { DecoderLayout } from './decoder';
import { decoderProgram } from './decoder';
import type { TraceFamily } from './traceGraph';

type Proj = [gate: string, up: string, down: string];

const STANDARD_MIXERS = new Set(['mha', 'gqa', 'mqa', 'sliding']);

/** gate/up/down weights of one SwiGLU among `specs` (by role), or undefined when any is missing. */
function swigluOf(specs: TensorSpec[]): Proj | undefined {
  const by = (role: TensorSpec['role']): string | undefined => specs.find((s) => s.role === role && s.name.endsWith('.weight'))?.name;
  const [g, u, d] = [by('mlp_gate'), by('mlp_up'), by('mlp_down')];
  return g && u && d ? [g, u, d] : undefined;
}

/**
 * The decoder layout of `cfg` read from `specs` (the family's logical tensors, experts grouped), or the
 * reason it is not standard.
 */
export function layoutFromRoles(cfg: MoeConfig, specs: TensorSpec[]): DecoderLayout | string {
  const odd = cfg.layers.find((l) => !STANDARD_MIXERS.has(l.attention));
  if (odd) return `layer ${odd.index} uses ${odd.attention} attention`;
  const byLayer = new Map<number, TensorSpec[]>();
  for (const s of specs) if (s.layer !== undefined) (byLayer.get(s.layer) ?? byLayer.set(s.layer, []).get(s.layer)!).push(s);
  const names = new Set(specs.map((s) => s.name));
  const attention = new Map<number, string>();
  const norms = new Map<number, { input: string; postAttention: string }>();
  const moe = new Map<number, string>();
  const routers = new Map<string, string>();
  const experts = new Map<string, Proj>();
  const fused = new Map<string, { input: string; output: string }>();
  const shared = new Map<string, { proj: Proj; gate?: string }>();
  const dense = new Map<number, Proj>();
  let qkNorm: DecoderLayout['qkNorm'] = 'none';
  let postNorms = false;
  let layerNorm = false;
  for (const spec of cfg.layers) {
    const l = spec.index;
    const ts = byLayer.get(l) ?? [];
    const q = ts.find((s) => s.role === 'attn_q' && s.name.endsWith('.q_proj.weight'));
    if (!q) return `layer ${l} has no q_proj`;
    const a = q.name.slice(0, -'.q_proj.weight'.length);
    if (!['k_proj', 'v_proj', 'o_proj'].every((x) => names.has(`${a}.${x}.weight`))) return `layer ${l} has no k/v/o projections beside ${a}.q_proj`;
    attention.set(l, a);
    const qn = specs.find((s) => s.name === `${a}.q_norm.weight`);
    if (qn) qkNorm = qn.shape[0] === cfg.attention.headDim ? 'head' : 'full';
    const norm = (suffix: string): string | undefined => ts.find((s) => s.component === 'norm' && s.name.endsWith(`.${suffix}.weight`))?.name.slice(0, -'.weight'.length);
    const input = norm('input_layernorm');
    const post = norm('post_attention_layernorm');
    if (!post) return `layer ${l} has no post_attention_layernorm`;
    if (!input) {
      if (!norm('post_feedforward_layernorm')) return `layer ${l} has no input_layernorm`;
      postNorms = true; // OLMo-2 style: norms on the block outputs
    }
    norms.set(l, { input: input ?? post, postAttention: post });
    if (names.has(`${post}.bias`)) layerNorm = true;
    if (spec.mlp === 'dense') {
      const d = swigluOf(ts.filter((s) => s.component === 'dense_mlp'));
      if (!d) return `layer ${l} has no gate/up/down dense MLP`;
      dense.set(l, d);
      continue;
    }
    if (spec.mlp !== 'moe') return `layer ${l} has no feed-forward`;
    const router = ts.find((s) => s.component === 'router' && !s.buffer && s.name.endsWith('.weight') && s.shape[0] === cfg.routedExperts);
    if (!router) return `layer ${l} has no router`;
    const m = router.name.replace(/\.(gate|router)(\.layer|\.wg)?\.weight$/, '');
    moe.set(l, m);
    routers.set(m, router.name);
    const routed = ts.filter((s) => s.component === 'routed_experts');
    if (routed.some((s) => s.fusedExperts)) {
      // transformers' fused experts: `experts.gate_up_proj` (gate half, then up half) + `experts.down_proj`, 3-D,
      // in either orientation (decoder.ts fusedInOut reads which from the checkpoint)
      const gateUp = routed.find((s) => s.fusedExperts && s.shape.length === 3 && s.name.endsWith('.experts.gate_up_proj'));
      const down = gateUp && routed.find((s) => s.name === gateUp.name.replace(/gate_up_proj$/, 'down_proj') && s.shape.length === 3);
      if (!gateUp || !down || routed.some((s) => s !== gateUp && s !== down)) return `layer ${l} stores its experts fused in a layout other than 3-D experts.gate_up_proj + experts.down_proj`;
      fused.set(m, { input: gateUp.name, output: down.name });
    } else {
      const e = swigluOf(routed.filter((s) => s.expertTemplate || s.expert === 0));
      if (!e) return `layer ${l} has no per-expert gate/up/down`;
      experts.set(m, e.map((n) => (n.includes(EXPERT_PLACEHOLDER) ? n : n.replace(/\.experts\.0\./, `.experts.${EXPERT_PLACEHOLDER}.`))) as Proj);
    }
    const sh = ts.filter((s) => s.component === 'shared_experts');
    const sp = swigluOf(sh);
    if (sp) shared.set(m, { proj: sp, gate: sh.find((s) => !s.role && s.name.endsWith('.weight') && s.shape[0] === 1)?.name });
  }
  const routerName = (m: string): string => routers.get(m) as string;
  return {
    moe: (l) => moe.get(l) as string,
    expert: (m, e) => (experts.get(m) as Proj).map((n) => n.replace(EXPERT_PLACEHOLDER, String(e))) as Proj,
    fusedExperts: fused.size ? (m) => fused.get(m) : undefined,
    router: routerName,
    routerBias: (m) => routerName(m).replace(/weight$/, 'bias'),
    qkNorm,
    postNorms,
    layerNorm,
    shared: (m) => shared.get(m),
    dense: (l) => dense.get(l) as Proj,
    norms: (l) => norms.get(l) as { input: string; postAttention: string },
    attention: (l) => attention.get(l) as string,
    embedding: specs.find((s) => s.role === 'embedding')?.name,
    finalNorm: specs.find((s) => s.role === 'final_norm')?.name.replace(/\.weight$/, ''),
  };
}

/** The trace family of a core family whose blocks are standard. */
export function standardFamily(core: FamilySpec): TraceFamily {
  return {
    id: core.id,
    modelTypes: core.modelTypes,
    program(cfg, probe) {
      const layout = layoutFromRoles(cfg, withGroupedExperts(() => core.expectedTensors(cfg)));
      if (typeof layout === 'string') {
        throw new TraceUnsupportedError('family-not-supported', `Tracing experts is not supported for ${cfg.modelType} yet: ${layout}, which the tracer does not build.`);
      }
      return decoderProgram(layout, cfg, probe);
    },
  };
}

/** standardFamily for `modelType` when the core knows it. */
export function standardFamilyFor(modelType: string): TraceFamily | undefined {
  const core = familyFor(modelType);
  return core ? standardFamily(core) : undefined;
}
