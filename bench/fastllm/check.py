#!/usr/bin/env python3
"""Runs Fast-LLM's own model on what mapper writes, and transformers on what mapper exports back.

For each case (a mapping and a synthetic checkpoint `mapper synth` writes), on one GPU:

  1. `mapper synth` writes a tiny HF checkpoint (BF16, the only dtype synth draws; every model below runs
     in F32, into which BF16 values convert exactly).
  2. transformers loads it (eager attention, F32, `use_cache=False`) and gives the reference logits for
     fixed token ids: a batch of two sequences, and one sequence longer than the sliding windows.
  3. `mapper apply` imports it; Fast-LLM loads the result with its own loader (`GPTModel.from_pretrained`,
     compute dtype F32) and runs the same ids; its logits are compared with the reference.
  4. Fast-LLM saves that model in its own format (`save_checkpoint`, what training writes: no
     `metadata.mapper`, F32 weights); `mapper apply` exports it back with `--like` the synth checkpoint
     and without; transformers runs each export; `mapper diff --files` compares the `--like` export with
     the synth checkpoint.
  5. Where Fast-LLM has an HF converter for the architecture, Fast-LLM imports the synth checkpoint
     itself: its logits are the control (Fast-LLM against transformers with no mapper involved), and its
     save goes through step 4's export too.

Every stage is independent: an error is recorded with its traceback and only the stages that need its
result are skipped. The two Fast-LLM trees (main, and PR #374 for GPT-OSS) cannot share a process, so each
runs in a worker process of its own; a worker that dies is restarted on the cases it had not started.
Results go to OUT/results.json and OUT/summary.txt, the workers' output to OUT/worker-*.log.

`--dry-run` does every mapper step (synth, import, export with and without `--like`, diff), with a copy
of mapper's own import, its record and `ok` removed, standing in for Fast-LLM's save; it imports nothing
heavy and needs no GPU. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import dataclasses
import gc
import importlib
import json
import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A logits comparison passes when max|a - b| <= TOLERANCE * max|reference|. Both sides run in F32 on
# the same (BF16-exact) weights, so what remains is the order of operations (eager against SDPA
# attention, Fast-LLM's Triton norms and rotary, fused MoE): about 1e-6 of the logits' scale for these
# two-layer models. A wrong mapping (a transposed or swapped projection, a missing norm, another rotary
# layout) moves the logits by their own scale, and BF16 compute would show ~1e-2; 1e-4 separates both
# by two orders of magnitude. The numbers themselves are in the report.
TOLERANCE = 1e-4

# Token ids: two sequences of 48 (Fast-LLM packs them as two documents), and one of 160, longer than
# the 128-token sliding windows of the tiny Gemma 4 and GPT-OSS.
INPUTS = (("batch", 2, 48), ("long", 1, 160))
INPUT_SEED = 1234

MAIN, PR374 = "main", "pr374"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    mapping: str  # mapper's mapping
    synth: str  # mapper synth's architecture name
    tree: str = MAIN  # the Fast-LLM it runs on
    fl_format: str | None = None  # Fast-LLM's own HF converter, by its format name
    # transformers class from Fast-LLM's external models (module, class); None: transformers' own
    # class named by config.json's architectures.
    hf_class: tuple[str, str] | None = None
    kernel_stubs: bool = False  # stand-ins for mamba_ssm, causal_conv1d, fla when importing hf_class
    mtp: bool = False  # compare every prediction head
    mxfp4: bool = False  # HF side quantized: transformers dequantizes on load
    synth_args: tuple[str, ...] = ()
    prepare: str | None = None  # a function below that rewrites the synth checkpoint
    extra: bool = False  # beyond the brief's list: run last
    note: str = ""


CASES = (
    Case("llama", "llama", "llama", fl_format="llama"),
    Case("mistral", "mistral", "mistral", fl_format="mistral"),
    Case("mixtral", "mixtral", "mixtral", fl_format="mixtral"),
    Case("qwen2", "qwen2", "qwen2", fl_format="qwen2"),
    Case("qwen3", "qwen3", "qwen3", note="Fast-LLM has no Qwen3 converter: mapper's import is the only way in"),
    Case(
        "mtp_llama",
        "mtp_llama",
        "mtp_llama",
        fl_format="mtp_llama",
        hf_class=("fast_llm_external_models.mtp_llama.modeling_mtp_llama", "MTPLlamaForCausalLM"),
        mtp=True,
        note="logits of both prediction heads",
    ),
    Case("gemma4", "gemma4", "gemma4", fl_format="gemma4"),
    Case(
        "apriel_hybrid_ssm_attention",
        "apriel_hybrid_ssm",
        "apriel_hybrid_ssm",
        fl_format="apriel_hybrid_ssm",
        hf_class=(
            "fast_llm_external_models.apriel_hybrid_ssm.modeling_apriel_hybrid_ssm",
            "AprielHybridSSMForCausalLM",
        ),
        kernel_stubs=True,
        prepare="apriel_attention_only",
        note="layout [t, t]: Mamba 2 layers need mamba_ssm/causal_conv1d in both the HF model and Fast-LLM;"
        " the HF modeling file imports them unconditionally, so stand-ins that raise if called are"
        " installed for its import only",
    ),
    Case(
        "gpt_oss_dense",
        "gpt_oss",
        "gpt_oss_dense",
        tree=PR374,
        fl_format="gpt_oss",
        note="dequantized experts (variant dense)",
    ),
    Case(
        "gpt_oss_mxfp4",
        "gpt_oss",
        "gpt_oss",
        tree=PR374,
        fl_format="gpt_oss",
        mxfp4=True,
        synth_args=("--byte-exact-mxfp4",),
        note="MXFP4 experts (variant mxfp4), dequantized by transformers (Mxfp4Config(dequantize=True));"
        " byte-exact groups so that the --like export can be compared file for file",
    ),
    Case("qwen3_moe", "qwen3_moe", "qwen3_moe", extra=True, note="no Fast-LLM converter"),
    Case("phi3", "phi3", "phi3", extra=True, note="no Fast-LLM converter"),
)

INFEASIBLE = {
    "apriel_hybrid_ssm (m2 layers)": "Fast-LLM's Mamba asserts mamba_ssm (`assert _mamba_available`) and the HF"
    " Mamba2 mixer asserts its CUDA fast path; the GPU image has neither",
    "diffusion_llama, dream": "not causal language models (DiffusionLlamaModel, DreamModel): no logits to"
    " compare the same way",
}


class Skip(Exception):
    """A stage that does not apply here (dry run, no converter): not an error."""


class MapperError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------
# Checkpoint preparation in pure Python (also run by --dry-run).


def read_safetensors(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict | None):
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(tensors[name][2])


def apriel_attention_only(hf_dir: Path) -> str:
    """Turns synth's [t, m2] Apriel hybrid into an attention-only one ([t, t]): drops the Mamba layers'
    mixer tensors and gives them attention projections, layer 0's with their elements reversed (another
    matrix of the same shape and distribution, so a mix-up between layers would show)."""
    cfg_path = hf_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    layout = list(cfg["hybrid_block_layout"])
    if "t" not in layout:
        raise ValueError(f"{cfg_path}: hybrid_block_layout {layout} has no attention layer to copy")
    t0 = layout.index("t")
    st = hf_dir / "model.safetensors"
    header, data = read_safetensors(st)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        m = re.match(r"model\.layers\.(\d+)\.mixer\.", name)
        if m and layout[int(m.group(1))] != "t":
            continue
        lo, hi = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[lo:hi])
    for layer, kind in enumerate(layout):
        if kind == "t":
            continue
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            dtype, shape, raw = tensors[f"model.layers.{t0}.self_attn.{proj}.weight"]
            if dtype not in ("BF16", "F16"):
                raise ValueError(f"{st}: {proj} is {dtype}, expected a 2-byte float")
            a = array.array("H")
            a.frombytes(raw)
            a.reverse()
            tensors[f"model.layers.{layer}.self_attn.{proj}.weight"] = (dtype, shape, a.tobytes())
    write_safetensors(st, tensors, header.get("__metadata__"))
    cfg["hybrid_block_layout"] = ["t"] * len(layout)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return f"hybrid_block_layout {layout} -> {cfg['hybrid_block_layout']}"


PREPARE = {"apriel_attention_only": apriel_attention_only}


def fit_token_ids(hf_dir: Path) -> str:
    """Moves token ids that synth's tiny vocabulary does not hold (gpt-oss's published pad 199999, Phi-3's
    32000) onto its last id, in config.json and generation_config.json: transformers cannot build a model
    whose padding_idx is outside its embedding table. Every later step sees the edited checkpoint."""
    notes = []
    for name in ("config.json", "generation_config.json"):
        path = hf_dir / name
        if not path.exists():
            continue
        cfg = json.loads(path.read_text())
        vocab = json.loads((hf_dir / "config.json").read_text()).get("vocab_size")
        if not isinstance(vocab, int):
            continue
        changed = []
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            v = cfg.get(key)
            if isinstance(v, int) and v >= vocab:
                cfg[key] = vocab - 1
                changed.append(f"{key} {v}")
            elif isinstance(v, list) and any(isinstance(x, int) and x >= vocab for x in v):
                cfg[key] = [vocab - 1 if isinstance(x, int) and x >= vocab else x for x in v]
                changed.append(f"{key} {v}")
        if changed:
            path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
            notes.append(f"{name}: {', '.join(changed)} -> {vocab - 1} (outside the vocabulary of {vocab})")
    return "; ".join(notes)


def make_inputs(vocab: int) -> dict[str, list[list[int]]]:
    rng = random.Random(INPUT_SEED)
    return {name: [[rng.randrange(vocab) for _ in range(s)] for _ in range(b)] for name, b, s in INPUTS}


# ---------------------------------------------------------------------------------------------------
# mapper


class Mapper:
    def __init__(self, binary: Path):
        self.binary = binary

    def __call__(self, *args: str, check: bool = True) -> tuple[int, str]:
        p = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        text = (p.stdout + p.stderr).strip()
        if check and p.returncode != 0:
            raise MapperError(f"mapper {' '.join(args)}: exit {p.returncode}\n{text}")
        return p.returncode, text


# ---------------------------------------------------------------------------------------------------
# Backends: the dry run, and the real one (torch, transformers, Fast-LLM).


class DryBackend:
    """mapper steps only: models are not run; Fast-LLM's save is mapper's import without its record."""

    name = "dry-run"

    def env(self) -> dict:
        return {"backend": self.name, "python": sys.version.split()[0]}

    def hf_logits(self, case: Case, hf_dir: Path, inputs):
        raise Skip("dry run: transformers is not run")

    def fl_load(self, case: Case, path: Path, fmt: str | None):
        if fmt is not None:
            raise Skip("dry run: Fast-LLM's own HF import is not run")
        return {"dir": path}

    def fl_logits(self, handle, inputs):
        raise Skip("dry run: Fast-LLM is not run")

    def fl_save(self, handle, out: Path) -> str:
        import yaml  # PyYAML; the GPU image has it

        shutil.copytree(handle["dir"], out)
        (out / "ok").unlink(missing_ok=True)  # save_checkpoint writes no `ok`
        meta_path = out / "metadata.yaml"
        meta = yaml.safe_load(meta_path.read_text())
        meta.get("metadata", {}).pop("mapper", None)
        meta_path.write_text(yaml.safe_dump(meta))
        return "stand-in: mapper's import with metadata.mapper and ok removed"

    def compare(self, ref, out) -> dict:
        raise Skip("dry run")

    def release(self, *handles):
        pass


def _probe_triton(torch) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import triton_probe

    triton_probe.probe()


def _probe_compile(torch) -> None:
    f = torch.compile(lambda x: x * 2 + 1)
    y = f(torch.ones(4, device="cuda"))
    if y.sum().item() != 12:
        raise RuntimeError(f"torch.compile probe computed {y.tolist()}")


_STUBBED = (
    "causal_conv1d",
    "einops",
    "mamba_ssm",
    "mamba_ssm.ops",
    "mamba_ssm.ops.selective_scan_interface",
    "mamba_ssm.ops.triton",
    "mamba_ssm.ops.triton.selective_state_update",
    "mamba_ssm.ops.triton.ssd_combined",
    "fla",
    "fla.modules",
    "fla.ops",
    "fla.ops.kda",
    "fla.ops.kda.gate",
    "fla.ops.utils",
    "fla.ops.utils.index",
    "fla.utils",
)


class _KernelStub(types.ModuleType):
    """A kernel package that is not installed: every name is a function that raises when called (an
    attention-only model never calls one), but for `fla.utils.tensor_cache`, a decorator applied at
    import time, which is the identity."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "tensor_cache":
            return lambda fn: fn

        def missing(*args, **kwargs):
            raise RuntimeError(f"{self.__name__}.{name}: stand-in for a kernel package that is not installed")

        missing.__name__ = name
        return missing


@contextlib.contextmanager
def kernel_stubs():
    added = []
    for name in _STUBBED:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            module = _KernelStub(name)
            module.__path__ = []
            sys.modules[name] = module
            added.append(name)
    try:
        yield added
    finally:
        # Fast-LLM's own guarded imports of these packages must keep failing.
        for name in added:
            sys.modules.pop(name, None)


class TorchBackend:
    """transformers for the HF side, Fast-LLM (main, or PR #374) for the other."""

    def __init__(self, tree: str, root: Path, log):
        self.tree = tree
        self.name = f"torch ({tree})"
        self.log = log
        if not (root / "fast_llm" / "__init__.py").is_file():
            raise FileNotFoundError(f"{root}/fast_llm/__init__.py: Fast-LLM's sources are not there (see README.md)")
        sys.path.insert(0, str(root))

        import torch
        import transformers

        self.torch = torch
        self.transformers = transformers
        # F32 means F32: no TF32 matmuls on either side.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device")
        self.device = torch.device("cuda")
        self.v5 = int(transformers.__version__.split(".")[0]) >= 5

        self.notes = []
        self.triton_ok = self._probe("triton", _probe_triton)
        self.compile_ok = self._probe("torch.compile", _probe_compile)

        import fast_llm
        from fast_llm.engine.checkpoint.config import (
            CheckpointLoadConfig,
            CheckpointSaveConfig,
            FastLLMCheckpointFormat,
            ModelConfigType,
        )
        from fast_llm.functional.config import TritonConfig
        from fast_llm.models.gpt.config import GPTModelConfig
        from fast_llm.models.gpt.model import GPTModel

        self.fast_llm = fast_llm
        self.CheckpointLoadConfig = CheckpointLoadConfig
        self.CheckpointSaveConfig = CheckpointSaveConfig
        self.FastLLMCheckpointFormat = FastLLMCheckpointFormat
        self.ModelConfigType = ModelConfigType
        self.GPTModelConfig = GPTModelConfig
        self.GPTModel = GPTModel
        if not self.triton_ok:
            # Fast-LLM then uses its PyTorch paths (its MoE layers are switched per model, below).
            TritonConfig.TRITON_ENABLED = False
            self.notes.append("Triton kernels disabled in Fast-LLM (probe failed)")
        if not self.compile_ok or not self.triton_ok:
            import torch._dynamo

            torch._dynamo.config.disable = True
            self.notes.append("torch.compile disabled (probe failed)")
        if tree == MAIN:
            # Fast-LLM main's HF wrapper, as its test_huggingface_model uses it.
            from fast_llm.models.gpt.huggingface import HuggingfaceGPTModelForCausalLM

            self.HFWrapper = HuggingfaceGPTModelForCausalLM
        else:
            # PR #374's HF wrapper predates transformers v5 (its config class declares a field that v5's
            # dataclass PretrainedConfig cannot take, and it calls transformers.modeling_utils.
            # no_init_weights): its inner_forward is followed here step by step instead.
            from fast_llm.data.data.gpt.data import GPTBatch
            from fast_llm.engine.distributed.config import PhaseType
            from fast_llm.layers.attention.config import AttentionKwargs
            from fast_llm.models.gpt.model import GPTInferenceRunner

            self.GPTBatch = GPTBatch
            self.PhaseType = PhaseType
            self.AttentionKwargs = AttentionKwargs
            self.GPTInferenceRunner = GPTInferenceRunner

    def _probe(self, what, fn) -> bool:
        try:
            fn(self.torch)
            return True
        except Exception:
            self.log(f"{what} probe failed:\n{traceback.format_exc()}")
            self.notes.append(f"{what} probe failed: {traceback.format_exc().strip().splitlines()[-1]}")
            return False

    def env(self) -> dict:
        torch = self.torch
        out = {
            "backend": f"torch ({self.tree})",
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(0),
            "transformers": self.transformers.__version__,
            "fast_llm": getattr(self.fast_llm, "__version__", "?"),
            "fast_llm_path": str(Path(self.fast_llm.__file__).parent),
            "triton_ok": self.triton_ok,
            "torch_compile_ok": self.compile_ok,
            "notes": self.notes,
        }
        with contextlib.suppress(Exception):
            import triton

            out["triton"] = triton.__version__
        return out

    # -- transformers

    def _hf_class(self, case: Case, hf_dir: Path):
        if case.hf_class is None:
            arch = json.loads((hf_dir / "config.json").read_text())["architectures"][0]
            return getattr(self.transformers, arch)
        module, cls = case.hf_class
        if case.kernel_stubs and module not in sys.modules:
            with kernel_stubs() as added:
                if added:
                    self.log(f"{case.name}: stand-ins for {', '.join(added)} while importing {module}")
                mod = importlib.import_module(module)
        else:
            mod = importlib.import_module(module)
        return getattr(mod, cls)

    def hf_logits(self, case: Case, hf_dir: Path, inputs):
        torch = self.torch
        cls = self._hf_class(case, hf_dir)
        kwargs = {"attn_implementation": "eager", ("dtype" if self.v5 else "torch_dtype"): torch.float32}
        if case.mxfp4:
            kwargs["quantization_config"] = self.transformers.Mxfp4Config(dequantize=True)
        try:
            model, info = cls.from_pretrained(str(hf_dir), output_loading_info=True, **kwargs)
        except TypeError:
            model, info = cls.from_pretrained(str(hf_dir), **kwargs), {}
        # A missing or mismatched weight is left at its random initialization, which the comparisons will
        # show; the warning says why (it is not fatal: transformers' accounting of converted weights, as
        # MXFP4's, is not ours to second-guess before the logits are seen).
        loading = {k: sorted(map(str, v)) for k, v in (info or {}).items() if isinstance(v, (list, set, tuple, dict)) and v}
        dtypes = sorted({str(p.dtype) for p in model.parameters()})
        model = model.float().to(self.device).eval()
        out, hidden = {}, None
        with torch.no_grad():
            for name, ids in inputs.items():
                t = torch.tensor(ids, dtype=torch.int64, device=self.device)
                kw = {"use_cache": False}
                if case.mtp:
                    kw["return_all_prediction_heads"] = True
                out[name] = model(input_ids=t, **kw).logits.float().cpu()
            if not case.mtp:
                with contextlib.suppress(Exception):
                    name, ids = next(iter(inputs.items()))
                    t = torch.tensor(ids, dtype=torch.int64, device=self.device)
                    hs = model(input_ids=t, use_cache=False, output_hidden_states=True).hidden_states
                    hidden = [h.float().cpu() for h in hs]
        self.release(model)
        detail = f"{cls.__name__}, loaded parameter dtypes {dtypes}"
        if loading:
            detail = f"WARNING: loading info {loading}; {detail}"
        return {"logits": out, "hidden": hidden, "detail": detail}

    # -- Fast-LLM

    def fl_load(self, case: Case, path: Path, fmt: str | None):
        fmt_cls = self.FastLLMCheckpointFormat if fmt is None else self.GPTModelConfig.get_checkpoint_format(fmt)
        if fmt is not None:
            # Fast-LLM's HF import reads config.json through the installed transformers' config class
            # (`_load_config`: from_pretrained(...).to_dict()), which under transformers 5 drops or respells
            # keys its converters read (gemma4's global_head_dim, gpt-oss's rope_theta). The control is
            # Fast-LLM's converter on the file as written, as the reference data was made.
            handler = fmt_cls.get_handler_class()

            def _load_config(cls, directory):
                return json.loads((Path(directory) / "config.json").read_text())

            handler._load_config = classmethod(_load_config)
        load = self.CheckpointLoadConfig(path=Path(path), format=fmt_cls, load_config=self.ModelConfigType.model)
        updates = {("distributed", "compute_dtype"): "float32"}
        if self.tree == MAIN:
            updates[("distributed", "use_cuda")] = True  # PR #374 has no such field (from_pretrained's use_cpu)
        model = self.GPTModel.from_pretrained(load, updates)
        if not self.triton_ok:
            self._moe_looped(model)
        handle = {"model": model, "case": case}
        if self.tree == MAIN:
            handle["hf"] = self.HFWrapper(model).eval()
        else:
            runner = self.GPTInferenceRunner(model)
            runner.setup()
            with contextlib.suppress(AttributeError):
                model.base_model.eval()
            handle["runner"] = runner
        return handle

    def _moe_looped(self, model) -> None:
        for module in model.base_model.modules():
            if hasattr(module, "_forward_looped") and hasattr(module, "_mlp_forward"):
                module._mlp_forward = module._forward_looped

    def fl_logits(self, handle, inputs):
        torch = self.torch
        case = handle["case"]
        out, hidden = {}, None
        with torch.no_grad():
            for name, ids in inputs.items():
                t = torch.tensor(ids, dtype=torch.int64, device=self.device)
                out[name] = self._fl_forward(handle, t, case.mtp).float().cpu()
            if self.tree == MAIN and not case.mtp:
                with contextlib.suppress(Exception):
                    name, ids = next(iter(inputs.items()))
                    t = torch.tensor(ids, dtype=torch.int64, device=self.device)
                    hs = handle["hf"](
                        input_ids=t,
                        use_cache=False,
                        output_attentions=False,
                        output_hidden_states=True,
                        return_dict=True,
                    ).hidden_states
                    hidden = [(k, v.float().cpu()) for k, v in hs.items()]
        return {"logits": out, "hidden": hidden}

    def _fl_forward(self, handle, ids, mtp: bool):
        if self.tree == MAIN:
            kw = {"return_all_prediction_heads": True} if mtp else {}
            return handle["hf"](
                input_ids=ids,
                use_cache=False,
                output_attentions=False,
                output_hidden_states=False,
                return_dict=True,
                **kw,
            ).logits
        # PR #374: HuggingfaceGPTModelForCausalLM.inner_forward without the wrapper.
        model = handle["model"]
        iteration = 1
        ((input_, kwargs),) = model.base_model.preprocess_batch(
            self.GPTBatch(ids), phase=self.PhaseType.inference, iteration=iteration
        )
        kwargs["output_hidden_states"] = False
        kwargs["global_logits"] = True
        handle["runner"].forward(input_, kwargs, iteration=iteration)
        logits = kwargs["logits"]
        if kwargs.get(self.AttentionKwargs.sequence_first):
            logits = logits.transpose(0, 1)
        return logits.reshape(*ids.shape, -1)  # (batch, sequence, vocab), as transformers gives them

    def fl_save(self, handle, out: Path) -> str:
        handle["model"].save_checkpoint(self.CheckpointSaveConfig(path=Path(out), format=self.FastLLMCheckpointFormat))
        files = sorted(p.name for p in Path(out).iterdir())
        return f"save_checkpoint(format=fast_llm): {files}"

    # -- comparison

    def compare(self, ref: dict, out: dict) -> dict:
        torch = self.torch
        res = {}
        for name, a in ref.items():
            b = out.get(name)
            if b is None:
                res[name] = {"pass": False, "error": "missing"}
                continue
            if tuple(a.shape) != tuple(b.shape):
                res[name] = {"pass": False, "error": f"shape {list(b.shape)}, reference {list(a.shape)}"}
                continue
            a64, b64 = a.double(), b.double()
            finite = bool(torch.isfinite(a64).all() and torch.isfinite(b64).all())
            max_abs = (a64 - b64).abs().max().item()
            ref_max = a64.abs().max().item()
            rel = max_abs / ref_max if ref_max > 0 else (0.0 if max_abs == 0 else math.inf)
            res[name] = {
                "max_abs": max_abs,
                "ref_max_abs": ref_max,
                "rel": rel,
                "argmax_agree": (a64.argmax(-1) == b64.argmax(-1)).double().mean().item(),
                "identical": bool(torch.equal(a, b)),
                "pass": finite and rel <= TOLERANCE,
            }
            if not finite:
                res[name]["error"] = "non-finite values"
        return res

    def hidden_diff(self, ref_hidden, fl_hidden) -> list | str:
        """Where two runs part, state by state (HF's hidden_states against Fast-LLM's, in order)."""
        if ref_hidden is None or fl_hidden is None:
            return "hidden states not available"
        if len(ref_hidden) != len(fl_hidden):
            return f"{len(ref_hidden)} HF hidden states, {len(fl_hidden)} Fast-LLM ones ({[k for k, _ in fl_hidden]})"
        rows = []
        for i, (a, (name, b)) in enumerate(zip(ref_hidden, fl_hidden)):
            if tuple(a.shape) != tuple(b.shape):
                rows.append({"index": i, "fast_llm": name, "error": f"shapes {list(a.shape)} / {list(b.shape)}"})
                continue
            d = (a.double() - b.double()).abs().max().item()
            rows.append({"index": i, "fast_llm": name, "max_abs": d, "ref_max_abs": a.abs().max().item()})
        return rows

    def release(self, *handles):
        for h in handles:
            if isinstance(h, dict):
                h.clear()
        gc.collect()
        self.torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------
# One case.


class CaseRun:
    def __init__(self, case: Case, log):
        self.case = case
        self.log = log
        self.stages: list[dict] = []
        self.checks: list[dict] = []
        self.values: dict = {}

    def stage(self, name: str, fn, needs: tuple[str, ...] = ()):
        missing = [n for n in needs if self.values.get(n) is None]
        if missing:
            self.stages.append({"stage": name, "status": "skipped", "detail": f"needs {', '.join(missing)}"})
            return None
        t0 = time.time()
        rec = {"stage": name}
        self.log(f"{self.case.name}: {name}")
        try:
            value = fn()
            rec["status"] = "ok"
            if isinstance(value, dict) and "detail" in value:
                rec["detail"] = value["detail"]
            elif isinstance(value, str):
                rec["detail"] = value
        except Skip as e:
            value = None
            rec["status"] = "skipped"
            rec["detail"] = str(e)
        except Exception as e:
            value = None
            rec["status"] = "error"
            rec["error"] = f"{type(e).__name__}: {e}"[:4000]
            rec["traceback"] = traceback.format_exc()[-8000:]
            self.log(f"{self.case.name}: {name} failed:\n{rec['traceback']}")
        rec["seconds"] = round(time.time() - t0, 2)
        self.stages.append(rec)
        self.values[name] = value
        return value

    def check_logits(self, backend, name: str, ref_stage: str, out_stage: str, diag: bool = False,
                     informational: bool = False):
        """Compares two stages' logits. An informational check (a path mapper documents as lossy) reports
        "differs" instead of failing the case."""
        ref, out = self.values.get(ref_stage), self.values.get(out_stage)
        if ref is None or out is None:
            missing = [s for s, v in ((ref_stage, ref), (out_stage, out)) if v is None]
            self.checks.append({"check": name, "status": "skipped", "detail": f"needs {', '.join(missing)}"})
            return
        try:
            per_input = backend.compare(ref["logits"], out["logits"])
        except Skip as e:
            self.checks.append({"check": name, "status": "skipped", "detail": str(e)})
            return
        except Exception as e:
            self.checks.append({"check": name, "status": "error", "error": f"{type(e).__name__}: {e}"})
            return
        ok = all(r["pass"] for r in per_input.values())
        status = "pass" if ok else "differs" if informational else "fail"
        rec = {"check": name, "status": status, "reference": ref_stage, "inputs": per_input}
        if informational:
            rec["informational"] = True
        if not ok and diag:
            try:
                rec["hidden_states"] = backend.hidden_diff(ref.get("hidden"), out.get("hidden"))
            except Exception as e:
                rec["hidden_states"] = f"{type(e).__name__}: {e}"
        self.checks.append(rec)

    def check_diff(self, mapper: Mapper, name: str, a: Path, b: Path, needs: str, files: bool):
        if self.values.get(needs) is None:
            self.checks.append({"check": name, "status": "skipped", "detail": f"needs {needs}"})
            return
        args = ["diff", *(["--files"] if files else []), str(a), str(b)]
        try:
            rc, text = mapper(*args, check=False)
        except Exception as e:
            self.checks.append({"check": name, "status": "error", "error": f"{type(e).__name__}: {e}"})
            return
        self.checks.append(
            {"check": name, "status": "pass" if rc == 0 else "fail", "command": "mapper " + " ".join(args),
             "exit": rc, "output": text[-3000:]}
        )

    def reconcile_with_control(self, first: str, control: str, same: str):
        """Where Fast-LLM's model itself disagrees with transformers, the first check (Fast-LLM on mapper's
        import vs transformers) cannot pass whatever mapper does. When Fast-LLM's own converter gives the very
        same logits (`same` passed with every input identical) and the control fails by as much, both checks
        say so ("as-control", C in the table) instead of failing the case: mapper's import is Fast-LLM's own,
        and the rest is a Fast-LLM/transformers difference, reported with its numbers."""
        by = {c["check"]: c for c in self.checks}
        f, ctl, sm = by.get(first), by.get(control), by.get(same)
        if not (f and ctl and sm) or f["status"] != "fail" or ctl["status"] != "fail" or sm["status"] != "pass":
            return
        if not all(r.get("identical") for r in sm["inputs"].values()):
            return
        if f["inputs"] != ctl["inputs"]:
            return
        for c in (f, ctl):
            c["status"] = "as-control"
            c["detail"] = ("Fast-LLM's own converter gives identical logits: the difference is Fast-LLM's model "
                           "against transformers, not the conversion")

    def result(self, backend_name: str, dry: bool) -> dict:
        errors = [s["stage"] for s in self.stages if s["status"] == "error"]
        failed = [c["check"] for c in self.checks if c["status"] in ("fail", "error")]
        passed = [c for c in self.checks if c["status"] == "pass"]
        if failed:
            status = "FAIL"
        elif errors:
            status = "ERROR"
        elif passed:
            status = "MAPPER-OK" if dry else "PASS"
        else:
            status = "SKIPPED"
        return {
            "case": self.case.name,
            "mapping": self.case.mapping,
            "synth": self.case.synth,
            "fast_llm": self.case.tree,
            "note": self.case.note,
            "backend": backend_name,
            "status": status,
            "errors": errors,
            "failed_checks": failed,
            "stages": self.stages,
            "checks": self.checks,
        }


def run_case(case: Case, backend, mapper: Mapper, work: Path, log) -> dict:
    r = CaseRun(case, log)
    d = work / case.name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    hf, fl = d / "hf", d / "fl-mapper"
    saved_a, back_a, back_a0 = d / "fl-saved", d / "hf-back-like", d / "hf-back-nolike"
    saved_b, back_b = d / "fl-saved-own-import", d / "hf-back-own-import"

    def synth():
        _, text = mapper("synth", *case.synth_args, case.synth, str(hf))
        if case.prepare:
            text += "\n" + PREPARE[case.prepare](hf)
        if note := fit_token_ids(hf):
            text += "\n" + note
        return text

    r.stage("synth", synth)
    inputs = None
    if r.values.get("synth") is not None:
        inputs = make_inputs(int(json.loads((hf / "config.json").read_text())["vocab_size"]))
    r.values["inputs"] = inputs

    r.stage("hf_reference", lambda: backend.hf_logits(case, hf, inputs), needs=("synth",))
    r.stage("mapper_import", lambda: mapper("apply", "--progress", "none", case.mapping, str(hf), str(fl))[1],
            needs=("synth",))

    # Fast-LLM on mapper's import.
    h = r.stage("fastllm_load_mapper_import", lambda: backend.fl_load(case, fl, None), needs=("mapper_import",))
    r.stage("fastllm_run_mapper_import", lambda: backend.fl_logits(h, inputs), needs=("fastllm_load_mapper_import",))
    r.check_logits(backend, "Fast-LLM on mapper's import vs transformers on the HF checkpoint",
                   "hf_reference", "fastllm_run_mapper_import", diag=True)
    r.stage("fastllm_save", lambda: backend.fl_save(h, saved_a), needs=("fastllm_load_mapper_import",))
    backend.release(h)

    # mapper's export of what Fast-LLM saved, with and without --like.
    r.stage("mapper_export_like",
            lambda: mapper("apply", "--progress", "none", "--like", str(hf), case.mapping, str(saved_a),
                           str(back_a))[1], needs=("fastllm_save",))
    r.stage("hf_run_export_like", lambda: backend.hf_logits(case, back_a, inputs), needs=("mapper_export_like",))
    r.check_logits(backend, "transformers on mapper's --like export of Fast-LLM's save vs the HF checkpoint",
                   "hf_reference", "hf_run_export_like")
    r.check_diff(mapper, "mapper diff --files: --like export of Fast-LLM's save vs the HF checkpoint", hf, back_a,
                 "mapper_export_like", files=True)
    r.stage("mapper_export_nolike",
            lambda: mapper("apply", "--progress", "none", case.mapping, str(saved_a), str(back_a0))[1],
            needs=("fastllm_save",))
    r.stage("hf_run_export_nolike", lambda: backend.hf_logits(case, back_a0, inputs), needs=("mapper_export_nolike",))
    # Without --like the keys only mapper's record held are lost (documented): informational.
    r.check_logits(backend, "transformers on mapper's export (no --like) of Fast-LLM's save vs the HF checkpoint",
                   "hf_reference", "hf_run_export_nolike", informational=True)

    # Fast-LLM's own HF import: the control, and a save that mapper did not write at all.
    if case.fl_format is None:
        r.stages.append({"stage": "fastllm_own_import", "status": "skipped", "detail": "Fast-LLM has no converter"})
    else:
        h2 = r.stage("fastllm_own_import", lambda: backend.fl_load(case, hf, case.fl_format), needs=("synth",))
        r.stage("fastllm_run_own_import", lambda: backend.fl_logits(h2, inputs), needs=("fastllm_own_import",))
        r.check_logits(backend, "control: Fast-LLM on its own import vs transformers (no mapper)",
                       "hf_reference", "fastllm_run_own_import", diag=True)
        r.check_logits(backend, "Fast-LLM on mapper's import vs Fast-LLM on its own import",
                       "fastllm_run_own_import", "fastllm_run_mapper_import")
        r.stage("fastllm_save_own_import", lambda: backend.fl_save(h2, saved_b), needs=("fastllm_own_import",))
        backend.release(h2)
        r.stage("mapper_export_like_own_import",
                lambda: mapper("apply", "--progress", "none", "--like", str(hf), case.mapping, str(saved_b),
                               str(back_b))[1], needs=("fastllm_save_own_import",))
        r.stage("hf_run_export_like_own_import", lambda: backend.hf_logits(case, back_b, inputs),
                needs=("mapper_export_like_own_import",))
        r.check_logits(backend, "transformers on mapper's --like export of Fast-LLM's own import vs the HF checkpoint",
                       "hf_reference", "hf_run_export_like_own_import")
        r.check_diff(mapper, "mapper diff --files: --like export of Fast-LLM's own import vs the HF checkpoint", hf,
                     back_b, "mapper_export_like_own_import", files=True)
        r.reconcile_with_control("Fast-LLM on mapper's import vs transformers on the HF checkpoint",
                                 "control: Fast-LLM on its own import vs transformers (no mapper)",
                                 "Fast-LLM on mapper's import vs Fast-LLM on its own import")
    backend.release()
    return r.result(backend.name, isinstance(backend, DryBackend))


# ---------------------------------------------------------------------------------------------------
# Worker (one Fast-LLM tree, one process) and orchestrator.


def worker(args) -> int:
    results = Path(args.results)

    def emit(obj):
        with results.open("a") as f:
            f.write(json.dumps(obj, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    cases = [c for c in CASES if c.name in args.cases.split(",")]
    root = Path(args.fastllm if args.worker == MAIN else args.fastllm374).resolve()
    try:
        backend = TorchBackend(args.worker, root, log)
        emit({"event": "env", "tree": args.worker, "env": backend.env()})
    except Exception as e:
        tb = traceback.format_exc()
        log(tb)
        emit({"event": "env", "tree": args.worker, "env": {"error": f"{type(e).__name__}: {e}", "traceback": tb}})
        for c in cases:
            emit({"event": "result", "case": c.name, "result": {
                "case": c.name, "mapping": c.mapping, "fast_llm": c.tree, "status": "ERROR",
                "errors": ["backend"], "failed_checks": [], "stages": [
                    {"stage": "backend", "status": "error", "error": f"{type(e).__name__}: {e}", "traceback": tb}],
                "checks": []}})
        return 1
    mapper = Mapper(Path(args.mapper))
    work = Path(args.work)
    for c in cases:
        if time.time() > args.deadline:
            emit({"event": "result", "case": c.name, "result": not_run(c, "time budget spent before it started")})
            continue
        emit({"event": "start", "case": c.name})
        t0 = time.time()
        res = run_case(c, backend, mapper, work, log)
        res["seconds"] = round(time.time() - t0, 1)
        emit({"event": "result", "case": c.name, "result": res})
        log(f"{c.name}: {res['status']} in {res['seconds']}s")
    return 0


def not_run(c: Case, why: str) -> dict:
    return {"case": c.name, "mapping": c.mapping, "fast_llm": c.tree, "status": "NOT RUN", "note": c.note,
            "errors": [], "failed_checks": [], "stages": [{"stage": "-", "status": "skipped", "detail": why}],
            "checks": []}


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def run_workers(args, groups: dict[str, list[Case]], out: Path, work: Path) -> tuple[dict, dict]:
    """Runs one worker per Fast-LLM tree at once; restarts a dead one on the cases it had not started."""
    results: dict[str, dict] = {}
    envs: dict[str, dict] = {}
    hard_deadline = args.start + args.budget + args.grace
    pending = {tree: list(cs) for tree, cs in groups.items() if cs}
    attempts = {tree: 0 for tree in pending}
    procs: dict[str, tuple[subprocess.Popen, Path, list[Case]]] = {}

    def launch(tree):
        attempts[tree] += 1
        cs = pending[tree]
        events = work / f"events-{tree}-{attempts[tree]}.jsonl"
        logf = (out / f"worker-{tree}.log").open("a")
        logf.write(f"\n===== worker {tree}, attempt {attempts[tree]}: {[c.name for c in cs]}\n")
        logf.flush()
        env = dict(os.environ)
        env.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29500 + len(procs) + 10 * attempts[tree]),
                    "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tree, "--cases",
               ",".join(c.name for c in cs), "--results", str(events), "--deadline", str(args.start + args.budget),
               "--mapper", str(args.mapper), "--fastllm", str(args.fastllm), "--fastllm374", str(args.fastllm374),
               "--work", str(work)]
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True, cwd=str(REPO))
        procs[tree] = (p, events, cs)

    for tree in pending:
        launch(tree)
    while procs:
        time.sleep(1)
        for tree in list(procs):
            p, events, cs = procs[tree]
            rc = p.poll()
            timed_out = rc is None and time.time() > hard_deadline
            if rc is None and not timed_out:
                continue
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                rc = "killed at the time limit"
            del procs[tree]
            evs = read_events(events)
            started = [e["case"] for e in evs if e.get("event") == "start"]
            for e in evs:
                if e.get("event") == "result":
                    results[e["case"]] = e["result"]
                elif e.get("event") == "env":
                    envs[f"{tree} (attempt {attempts[tree]})"] = e["env"]
            crashed = [c for c in cs if c.name in started and c.name not in results]
            for c in crashed:
                how = "was killed at the time limit" if timed_out else f"died (exit {rc})"
                res = not_run(c, f"the worker {how} during this case; see worker-{tree}.log")
                res["status"] = "ERROR"
                res["errors"] = ["worker stopped"]
                results[c.name] = res
            pending[tree] = [c for c in cs if c.name not in started and c.name not in results]
            if pending[tree]:
                if timed_out or time.time() > args.start + args.budget:
                    for c in pending[tree]:
                        results[c.name] = not_run(c, "time budget spent")
                elif attempts[tree] >= 3:
                    for c in pending[tree]:
                        results[c.name] = not_run(c, f"worker failed {attempts[tree]} times (exit {rc})")
                else:
                    launch(tree)
    return results, envs


def fmt_num(x) -> str:
    if isinstance(x, float):
        return "0" if x == 0 else f"{x:.2e}"
    return str(x)


def summarize(results: list[dict], envs: dict, args, dry: bool) -> str:
    lines = ["mapper x Fast-LLM forward check" + (" (DRY RUN: mapper steps only)" if dry else "")]
    lines.append(f"mapper: {args.mapper_version}")
    for name, env in envs.items():
        lines.append(f"env {name}: " + ", ".join(f"{k}={v}" for k, v in env.items() if k != "traceback"))
    lines.append(f"tolerance: max|a-b| <= {TOLERANCE:g} * max|reference| (F32 on both sides); inputs "
                 + ", ".join(f"{n} {b}x{s}" for n, b, s in INPUTS))
    lines.append("")
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    lines.append("")
    for r in results:
        head = f"== {r['case']:<28} {r['status']:<8} (mapping {r['mapping']}, Fast-LLM {r['fast_llm']}"
        head += f", {r['seconds']}s)" if "seconds" in r else ")"
        lines.append(head)
        if r.get("note"):
            lines.append(f"   note: {r['note']}")
        shown = [c for c in r["checks"] if not (dry and c["status"] == "skipped")]
        if len(shown) < len(r["checks"]):
            lines.append(f"   ({len(r['checks']) - len(shown)} model checks not run: dry run)")
        for c in shown:
            if "inputs" in c:
                parts = []
                for name, v in c["inputs"].items():
                    if "error" in v and "rel" not in v:
                        parts.append(f"{name}: {v['error']}")
                    else:
                        s = f"{name}: rel {fmt_num(v['rel'])} (max|d| {fmt_num(v['max_abs'])}, max|ref| " \
                            f"{fmt_num(v['ref_max_abs'])}, argmax {v['argmax_agree']:.3f})"
                        parts.append(s + (" identical" if v["identical"] else ""))
                lines.append(f"   [{c['status'].upper():<7}] {c['check']}")
                lines.append("             " + "; ".join(parts))
                if isinstance(c.get("hidden_states"), list):
                    lines.append("             hidden states: " + ", ".join(
                        f"{h['fast_llm']} {fmt_num(h.get('max_abs', h.get('error')))}" for h in c["hidden_states"]))
                elif c.get("hidden_states"):
                    lines.append(f"             hidden states: {c['hidden_states']}")
            elif "exit" in c:
                lines.append(f"   [{c['status'].upper():<7}] {c['check']}: exit {c['exit']}")
                lines.extend("             " + s for s in c["output"].splitlines()[:6])
            else:
                lines.append(f"   [{c['status'].upper():<7}] {c['check']}: {c.get('detail') or c.get('error')}")
        for s in r["stages"]:
            if s["status"] == "error":
                lines.append(f"   stage {s['stage']}: ERROR {s['error'].splitlines()[0][:300]}")
                if s["stage"] != "backend":  # the same for every case of a worker: in its log
                    tb = s.get("traceback", "").strip().splitlines()
                    lines.extend("      | " + t for t in tb[-12:])
            elif s.get("detail", "").startswith("WARNING"):
                lines.append(f"   stage {s['stage']}: {s['detail'][:600]}")
            elif s["status"] == "skipped" and not dry:
                lines.append(f"   stage {s['stage']}: skipped ({s.get('detail', '')})")
        timing = ", ".join(f"{s['stage']} {s['seconds']}s" for s in r["stages"] if "seconds" in s)
        if timing:
            lines.append(f"   timing: {timing}")
        lines.append("")
    lines.append("not covered:")
    lines.extend(f"   {k}: {v}" for k, v in INFEASIBLE.items())
    return "\n".join(lines) + "\n"


def table(results: list[dict]) -> str:
    """One line per case, worst logits comparison per check kind: the end of stdout, which is what a
    truncated console shows."""
    lines = ["case                         status     checks (P pass, D differs, F fail, E error, - skipped)"]
    for r in results:
        marks = "".join({"pass": "P", "differs": "D", "as-control": "C", "fail": "F", "error": "E"}.get(c["status"], "-")
                        for c in r["checks"])
        worst = max((v.get("rel", math.inf) for c in r["checks"] if not c.get("informational")
                     for v in c.get("inputs", {}).values()), default=None)
        extra = f"  worst rel {fmt_num(worst)}" if worst is not None else ""
        errs = f"  errors in {', '.join(r['errors'])}" if r["errors"] else ""
        lines.append(f"{r['case']:<28} {r['status']:<10} {marks:<10}{extra}{errs}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="mapper steps only, no torch (see the module doc)")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all); --list shows them")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "bench" / "out" / "fastllm"))
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "mapper-fastllm-check"))
    ap.add_argument("--mapper", default=str(REPO / "bench" / "bin" / "mapper"))
    ap.add_argument("--fastllm", default=str(REPO / ".fastllm"), help="holds fast_llm/ and fast_llm_external_models/")
    ap.add_argument("--fastllm374", default=str(REPO / ".fastllm374"), help="holds PR #374's fast_llm/")
    ap.add_argument("--budget", type=float, default=200, help="seconds after which no case starts (default 200)")
    ap.add_argument("--grace", type=float, default=30, help="seconds past --budget before workers are killed")
    ap.add_argument("--worker", choices=(MAIN, PR374), help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        return worker(args)
    if args.list:
        for c in sorted(CASES, key=lambda c: c.extra):
            print(f"{c.name:<30} mapping {c.mapping:<18} synth {c.synth:<18} Fast-LLM {c.tree:<6}"
                  f" converter {c.fl_format or '-'}{'  (extra)' if c.extra else ''}")
        return 0

    args.start = time.time()
    names = [n for n in args.cases.split(",") if n]
    unknown = sorted(set(names) - {c.name for c in CASES})
    if unknown:
        print(f"unknown case(s) {unknown}; --list shows them", file=sys.stderr)
        return 2
    cases = sorted((c for c in CASES if not names or c.name in names), key=lambda c: c.extra)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in ("results.json", "summary.txt", "worker-main.log", "worker-pr374.log", "run.log"):
        (out / f).unlink(missing_ok=True)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    args.mapper = str(Path(args.mapper).resolve())

    results: dict[str, dict] = {}
    envs: dict[str, dict] = {}
    try:
        args.mapper_version = Mapper(Path(args.mapper))("version")[1]
    except Exception as e:
        args.mapper_version = f"UNUSABLE: {type(e).__name__}: {e}"
        for c in cases:
            results[c.name] = not_run(c, f"mapper binary {args.mapper}: {e}")
    run_log = (out / "run.log").open("w")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        run_log.write(line + "\n")
        run_log.flush()

    todo = [c for c in cases if c.name not in results]
    if args.dry_run:
        backend = DryBackend()
        envs["dry-run"] = backend.env()
        mapper = Mapper(Path(args.mapper))
        for c in todo:
            t0 = time.time()
            results[c.name] = run_case(c, backend, mapper, work, log)
            results[c.name]["seconds"] = round(time.time() - t0, 1)
            log(f"{c.name}: {results[c.name]['status']}")
    else:
        groups: dict[str, list[Case]] = {MAIN: [], PR374: []}
        for c in todo:
            root = Path(args.fastllm if c.tree == MAIN else args.fastllm374)
            if not (root / "fast_llm" / "__init__.py").is_file():
                results[c.name] = not_run(c, f"{root}/fast_llm is missing (see bench/fastllm/README.md)")
            else:
                groups[c.tree].append(c)
        log(f"workers: " + ", ".join(f"{t}: {[c.name for c in cs]}" for t, cs in groups.items() if cs))
        r, envs = run_workers(args, groups, out, work)
        results.update(r)

    ordered = [results[c.name] for c in cases if c.name in results]
    text = summarize(ordered, envs, args, args.dry_run)
    (out / "summary.txt").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"tolerance": TOLERANCE, "inputs": INPUTS, "dry_run": args.dry_run, "mapper": args.mapper_version,
         "env": envs, "not_covered": INFEASIBLE, "cases": ordered, "seconds": round(time.time() - args.start, 1)},
        indent=1, default=str))
    for f in out.glob("worker-*.log"):  # keep what comes back small: the tail is what matters
        data = f.read_bytes()
        if len(data) > 400_000:
            f.write_bytes(b"[... head cut ...]\n" + data[-400_000:])
    print(text)
    print(table(ordered))
    log(f"done in {time.time() - args.start:.0f}s; {out}/summary.txt, {out}/results.json")
    bad = [r for r in ordered if r["status"] != ("MAPPER-OK" if args.dry_run else "PASS")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
