"""``benchmarks/accelerator.sh --quick`` runs end to end, here on CPU.

The script is meant for a machine with a GPU; its quick mode checks, where
there is none, that both parts run, that it says which device it ran on, and
that what it writes is there and adds up. No timing is asserted.
"""

import json
import pathlib
import subprocess

import _user_shell
import jax
import pytest

from benchmarks import kernel_count

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "accelerator.sh"
PROGRAMS = ("forward", "probe_vmap", "probe_sequential", "step_sgd",
            "step_vmap", "step_sequential")  # fmt: skip
# The quick run's MLP, 784-20-10: two Dense layers.
MLP_LAYERS = 2


# Long (runs the accelerator benchmark script): the README's test command leaves
# it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def _run(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  return _user_shell.run(["bash", str(SCRIPT), *args], cwd, timeout=240)


def _report(out: pathlib.Path, name: str) -> dict:
  """A JSON report of the quick run, with its common fields checked."""
  report = json.loads((out / f"{name}.json").read_text())
  assert report["device"]["platform"] == jax.default_backend()
  assert report["quick"] is True
  assert set(report["models"]) == {"mlp"}
  return report


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  # From another directory, with a relative OUT_DIR: the script resolves it
  # before it moves to the checkout.
  cwd = tmp_path_factory.mktemp("accelerator")
  result = _run("out", "--quick", cwd=cwd)
  assert result.returncode == 0, result.stdout + result.stderr
  return result, cwd / "out"


def test_says_which_device_it_ran_on(run):
  result, out = run
  device = f"device: {jax.default_backend()} ("
  assert result.stdout.startswith(device)
  assert (out / "device.txt").read_text().startswith(device)


def test_kernel_counts_are_written_and_add_up(run):
  _, out = run
  report = _report(out, "kernel_count")
  programs = report["models"]["mlp"]["programs"]
  assert set(programs) == set(PROGRAMS)
  for name, counts in programs.items():
    assert counts["launches"] >= counts["matmuls"] > 0, name
    assert sum(counts["by_kind"].values()) == counts["launches"], name
    assert (out / "hlo" / f"mlp_{name}.hlo.txt").stat().st_size > 1000, name
  assert programs["forward"]["matmuls"] == MLP_LAYERS
  # vmap: one product per layer for both candidates; sequential: a loop run
  # twice, one product per layer and candidate.
  assert programs["probe_vmap"]["matmuls"] == MLP_LAYERS
  assert programs["probe_vmap"]["loops"] == []
  assert programs["probe_sequential"]["matmuls"] == 2 * MLP_LAYERS
  assert programs["probe_sequential"]["loops"] == [2]
  for mode in ("vmap", "sequential"):
    # A step is SGD's step and a probe step: its products are both of theirs.
    assert programs[f"step_{mode}"]["matmuls"] == (
      programs["step_sgd"]["matmuls"] + programs[f"probe_{mode}"]["matmuls"]
    )
  assert "| probe_vmap |" in (out / "kernel_count.md").read_text()


def test_step_cost_is_written(run):
  _, out = run
  report = _report(out, "step_cost")
  assert report["models"]["mlp"]["vmap_over_sequential"] > 0
  assert "| per step | mlp |" in (out / "step_cost.md").read_text()


def test_rejects_a_missing_folder_or_an_unknown_option(tmp_path):
  assert _run(cwd=tmp_path).returncode == 2
  result = _run("out", "--fast", cwd=tmp_path)
  assert result.returncode == 2
  assert "--fast" in result.stderr
  assert not (tmp_path / "out").exists()


# The shape of XLA:GPU's optimized HLO, written by hand (no GPU here): a
# Triton gemm fusion, a cuBLAS gemm whose result is a tuple with its
# workspace, a loop whose trip count XLA knows, and a conditional.
GPU_STYLE_HLO = """\
HloModule jit_probe, entry_computation_layout={(f32[8,4]{1,0}, f32[2,4,3]{2,1,0})->f32[8,2,3]{2,1,0}}

%fused_multiply (param_0: f32[2,4,3]) -> f32[2,4,3] {
  %param_0 = f32[2,4,3]{2,1,0} parameter(0)
  %constant_1 = f32[] constant(2)
  %broadcast.1 = f32[2,4,3]{2,1,0} broadcast(%constant_1), dimensions={}
  ROOT %multiply.1 = f32[2,4,3]{2,1,0} multiply(%param_0, %broadcast.1)
}

%triton_gemm_dot (p0: f32[8,4], p1: f32[2,4,3]) -> f32[8,2,3] {
  %p0 = f32[8,4]{1,0} parameter(0)
  %p1 = f32[2,4,3]{2,1,0} parameter(1)
  ROOT %dot.1 = f32[8,2,3]{2,1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={1}
}

%fused_add (param_0.1: f32[8,4]) -> f32[8,4] {
  %param_0.1 = f32[8,4]{1,0} parameter(0)
  ROOT %add.1 = f32[8,4]{1,0} add(%param_0.1, %param_0.1)
}

%body (arg: (s32[], f32[8,4])) -> (s32[], f32[8,4]) {
  %arg = (s32[], f32[8,4]{1,0}) parameter(0)
  %i = s32[] get-tuple-element(%arg), index=0
  %x = f32[8,4]{1,0} get-tuple-element(%arg), index=1
  %gemm.2 = (f32[8,4]{1,0}, s8[4194304]{0}) custom-call(%x, %x), custom_call_target="__cublas$gemm", backend_config={"gemm_backend_config":{"alpha_real":1}}
  %y = f32[8,4]{1,0} get-tuple-element(%gemm.2), index=0
  %add_fusion = f32[8,4]{1,0} fusion(%y), kind=kLoop, calls=%fused_add
  ROOT %tuple.2 = (s32[], f32[8,4]{1,0}) tuple(%i, %add_fusion)
}

%fused_compare (param_0.2: s32[]) -> pred[] {
  %param_0.2 = s32[] parameter(0)
  %constant_2 = s32[] constant(2)
  ROOT %compare.1 = pred[] compare(%param_0.2, %constant_2), direction=LT
}

%cond (arg.1: (s32[], f32[8,4])) -> pred[] {
  %arg.1 = (s32[], f32[8,4]{1,0}) parameter(0)
  %i.1 = s32[] get-tuple-element(%arg.1), index=0
  ROOT %compare_fusion = pred[] fusion(%i.1), kind=kLoop, calls=%fused_compare
}

%branch_0 (x.1: f32[8,4]) -> f32[8,4] {
  %x.1 = f32[8,4]{1,0} parameter(0)
  ROOT %add_fusion.1 = f32[8,4]{1,0} fusion(%x.1), kind=kLoop, calls=%fused_add
}

%branch_1 (x.2: f32[8,4]) -> f32[8,4] {
  %x.2 = f32[8,4]{1,0} parameter(0)
  ROOT %add_fusion.2 = f32[8,4]{1,0} fusion(%x.2), kind=kLoop, calls=%fused_add
}

ENTRY %main.10 (Arg_0.1: f32[8,4], Arg_1.2: f32[2,4,3], Arg_2.3: s32[]) -> f32[8,2,3] {
  %Arg_0.1 = f32[8,4]{1,0} parameter(0)
  %Arg_1.2 = f32[2,4,3]{2,1,0} parameter(1)
  %Arg_2.3 = s32[] parameter(2)
  %loop_multiply_fusion = f32[2,4,3]{2,1,0} fusion(%Arg_1.2), kind=kLoop, calls=%fused_multiply
  %gemm_fusion_dot.1 = f32[8,2,3]{2,1,0} fusion(%Arg_0.1, %loop_multiply_fusion), kind=kCustom, calls=%triton_gemm_dot, backend_config={"operation_queue_id":"0","fusion_backend_config":{"kind":"__triton_gemm","triton_gemm_config":{"block_m":"16"}}}
  %gemm.1 = (f32[8,4]{1,0}, s8[4194304]{0}) custom-call(%Arg_0.1, %Arg_0.1), custom_call_target="__cublas$gemm", backend_config={"gemm_backend_config":{"alpha_real":1}}
  %c0 = s32[] constant(0)
  %tuple.0 = (s32[], f32[8,4]{1,0}) tuple(%c0, %Arg_0.1)
  %while.1 = (s32[], /*index=1*/f32[8,4]{1,0}) while(%tuple.0), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"2"},"known_init_step":{"init":"0","step":"1"}}
  %conditional.1 = f32[8,4]{1,0} conditional(%Arg_2.3, %Arg_0.1, %Arg_0.1), branch_computations={%branch_0, %branch_1}
  ROOT %bitcast.1 = f32[8,2,3]{2,1,0} bitcast(%gemm_fusion_dot.1)
}
"""  # noqa: E501 (XLA prints an instruction on one line)


def test_counts_kernels_of_a_gpu_style_module():
  counts = kernel_count.count_launches(GPU_STYLE_HLO)
  # In ENTRY: 2 fusions and a gemm; the loop's body (a gemm, a fusion) twice
  # and its condition three times; each branch of the conditional once.
  assert counts.by_kind == {
    "custom-call __cublas$gemm": 1 + 2,
    "fusion kCustom __triton_gemm": 1,
    "fusion kLoop": 1 + 2 + 3 + 2,
  }
  assert counts.launches == 12
  assert counts.matmuls == 1 + 1 + 2
  assert counts.loops == [2]
  assert counts.conditionals == 1
