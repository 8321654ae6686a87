import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isModelConfigText } from '../../src/core/config/modelConfigProbe';
import { FIXTURES, REAL, realConfigs, TINY } from './util/fixtures';

const REAL_2026 = path.join(FIXTURES, 'real-configs-2026');
const text = (p: string): string => fs.readFileSync(p, 'utf8');

describe('model config probe (activation on JSON files)', () => {
  describe('every published and tiny config.json is a model config', () => {
    const files = [
      ...realConfigs().map((d) => path.join(REAL, d, 'config.json')),
      ...fs.readdirSync(REAL_2026).map((d) => path.join(REAL_2026, d, 'config.json')),
      ...fs.readdirSync(TINY).map((d) => path.join(TINY, d, 'config.json')),
    ].filter((f) => fs.existsSync(f));
    it(`${files.length} files`, () => {
      assert.ok(files.length > 30, `fixtures found: ${files.length}`);
      for (const f of files) {
        // Independent check: the parsed object has one of transformers' top-level config keys.
        const o = JSON.parse(text(f)) as Record<string, unknown>;
        assert.ok('model_type' in o || 'architectures' in o || 'text_config' in o, f);
        assert.equal(isModelConfigText(text(f)), true, f);
      }
    });
  });

  it('this repository\'s package.json, tsconfig.json and VS Code settings are not', () => {
    assert.equal(isModelConfigText(text('package.json')), false);
    assert.equal(isModelConfigText(text('tsconfig.json')), false);
    assert.equal(isModelConfigText(text('webview/tsconfig.json')), false);
    assert.equal(isModelConfigText('// settings\n{ "editor.tabSize": 2, /* c */ "files.exclude": { "**/.git": true }, }'), false);
  });

  it('only top-level keys count: nested keys and string values do not', () => {
    assert.equal(isModelConfigText('{"tool": {"model_type": "mixtral"}, "b": 1}'), false);
    assert.equal(isModelConfigText('{"name": "model_type", "list": ["architectures"]}'), false);
    assert.equal(isModelConfigText('[{"model_type": "mixtral"}]'), false);
    assert.equal(isModelConfigText('"model_type"'), false);
    assert.equal(isModelConfigText(''), false);
    // After a nested object the scan is back at the top level.
    assert.equal(isModelConfigText('{"quantization_config": {"bits": 4, "x": [1, {"y": 2}]}, "model_type": "qwen3_moe"}'), true);
    // JSONC and a half-typed file still probe (the analysis decides the rest).
    assert.equal(isModelConfigText('// c\n{ "architectures": ["MixtralForCausalLM"], "hidden_size": '), true);
  });
});
