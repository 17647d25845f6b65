"""A windowed real FFT, its power spectrum and the mel projection as ONNX matrix products (two-step Cooley-Tukey).

Why not ONNX's ``STFT`` operator: onnxruntime 1.32's CPU kernel took 1.5-1.9x this graph's time on the same frames
(``benchmarks/inference.py``), and the ``Gather``s that split its ``[..., 2]`` output into real and imaginary parts
run element by element (on 003's model, 10-s window, one thread: STFT 148 ms + Gathers 92 ms against 36 ms for all
the convolutions). A
dense DFT matrix (``n_fft x (n_fft + 2)`` multiply-adds per frame) is 4.2 G multiply-adds per 10-s window, ten times
the model. The FFT's first factorisation step needs neither: with ``n_fft = N = N1 N2``, ``n = N2 n1 + n2`` and
``k = k1 + N1 k2``,

    X[k] = sum_n2 e^{-2 pi i k n2 / N} Y[k1, n2],      Y[k1, n2] = sum_n1 w[n] x[n] e^{-2 pi i k1 n1 / N1}

(the twiddle factor and the second DFT fold into one ``N2 x N2`` matrix per ``k1``), two dense matrix products of
about ``N (N1 + 2 N2)`` multiply-adds per frame, ~15x fewer than the DFT at ``N1 = 64, N2 = 32``, run by
onnxruntime's GEMM kernels:

1. framing without copies of overlapping frames: the signal ``[B, L]`` is reshaped into rows of one hop, and for
   each ``n1`` the samples ``t hop + N2 n1 + n2`` of every frame ``t`` are one ``Slice`` of that matrix (two where
   they cross a row end), stacked into ``[N1, B, T, N2]`` and multiplied by the window;
2. step 1, the real ``N1``-point DFT: ``[H, N1] @ [N1, B T N2]`` for the real and the imaginary parts of
   ``k1 = 0 .. N1 / 2`` (``H`` of them; the other ``k1`` are their complex conjugates);
3. step 2, one batched product per ``k1`` pair: batch ``b`` turns ``Y[b]`` into the bins of ``k1 = b`` and of its
   conjugate ``k1 = N1 - b``, ``[H, B T, N2] @ [H, N2, 2 S]`` for the real and imaginary parts (``S`` bin slots
   per batch; slots past ``N / 2`` are zero columns);
4. power ``re^2 + im^2`` (a square and the sum of two halves), laid out ``[B T, S, H]``, where each half of the
   slots is in frequency order, then the mel basis with its rows put in that order (so no bin is ever gathered
   back into frequency order), in band-limited products: a group of 16 mel bands multiplies only the stretches of
   the spectrum its filters cover (7x fewer multiply-adds than the dense ``[B T, S H] @ [S H, mels]`` for 003).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # onnx is an optional extra, imported where nodes are made
    from onnx import NodeProto, TensorProto


def fft_factors(n_fft: int) -> tuple[int, int] | None:
    """``(N1, N2)`` with ``N1 N2 = n_fft``, ``N1`` nearest ``sqrt(2 n_fft)`` (which minimises ``N1 + 2 N2``), or
    None when ``n_fft`` has no such split worth making (both factors at least 4)."""
    splits = [(n1, n_fft // n1) for n1 in range(4, n_fft // 4 + 1) if n_fft % n1 == 0]
    return min(splits, key=lambda s: s[0] + 2 * s[1], default=None)


@dataclass(frozen=True)
class FftPlan:
    """Where the two-step FFT of ``n_fft = n1 n2`` points puts each bin ``0 .. n_fft / 2``: batch ``b`` (``k1 = b``,
    ``H = n1 // 2 + 1`` of them) computes the bins of ``k1 = b`` and of its conjugate ``k1 = n1 - b`` into ``S``
    slots."""

    n1: int
    n2: int
    slot_bins: np.ndarray  # [H, S]: the frequency bin of each slot, -1 for an empty slot
    slot_signs: np.ndarray  # [H, S]: +1 where the slot's k1 is b, -1 where it is the conjugate n1 - b, 0 if empty

    @property
    def batches(self) -> int:
        return self.slot_bins.shape[0]

    @property
    def slots(self) -> int:
        return self.slot_bins.shape[1]

    def step1(self) -> tuple[np.ndarray, np.ndarray]:
        """The real and imaginary parts ``[H, N1]`` of the ``N1``-point DFT's rows ``k1 = 0 .. N1 / 2``."""
        angles = 2 * np.pi * np.outer(np.arange(self.batches), np.arange(self.n1)) / self.n1
        return np.cos(angles), -np.sin(angles)

    def step2(self) -> tuple[np.ndarray, np.ndarray]:
        """The factors ``[H, N2, 2S]`` on ``Re Y[b]`` and on ``Im Y[b]``; columns: S real parts, S imaginary parts.

        (re + i sign im)(c + i s) with ``c + i s = e^{-2 pi i k n2 / N}``: real part ``re c - sign im s``,
        imaginary part ``re s + sign im c``. ``step2_nodes`` builds the same matrices in the graph."""
        n = self.n1 * self.n2
        angles = 2 * np.pi * (np.maximum(self.slot_bins, 0)[:, None, :] * np.arange(self.n2)[None, :, None] % n) / n
        mask, sign = (self.slot_bins >= 0)[:, None, :], self.slot_signs[:, None, :]
        c, s = np.cos(angles) * mask, -np.sin(angles) * mask
        return np.concatenate([c, s], axis=2), np.concatenate([-sign * s, sign * c], axis=2)


def fft_plan(n1: int, n2: int) -> FftPlan:
    """The slots of the two-step real FFT of ``n1 n2`` points (module docstring)."""
    n = n1 * n2
    batches = range(n1 // 2 + 1)
    own = [list(range(b, n // 2 + 1, n1)) for b in batches]
    # the conjugate k1 = n1 - b, from the same Y[b]
    conjugate = [list(range(n1 - b, n // 2 + 1, n1)) if b > 0 and n1 - b != b else [] for b in batches]
    # Slots [0, first): bins of k1 = b; slots [first, ...): bins of k1 = n1 - b. So slot j of every batch holds bins
    # of one frequency stretch, and the spectrum laid out [slot, batch] is in frequency order within each half.
    first = max(map(len, own))
    slot_bins = np.full((len(own), first + max(map(len, conjugate))), -1, dtype=np.int64)
    slot_signs = np.zeros(slot_bins.shape, dtype=np.int64)
    for b in batches:
        slot_bins[b, : len(own[b])], slot_signs[b, : len(own[b])] = own[b], 1
        slot_bins[b, first: first + len(conjugate[b])], slot_signs[b, first: first + len(conjugate[b])] = conjugate[b], -1
    return FftPlan(n1, n2, slot_bins, slot_signs)


def framing_pieces(n1: int, n2: int, hop: int) -> list[list[tuple[int, int, int]]]:
    """For each ``n1``, the ``(row, column, width)`` runs of the hop-wide signal matrix that hold samples
    ``t hop + N2 n1 + n2`` (``n2 = 0 .. N2 - 1``) of frame ``t`` at row ``t + row``."""
    pieces = []
    for i in range(n1):
        start, runs = n2 * i, []
        while start < n2 * (i + 1):
            row, column = divmod(start, hop)
            width = min(hop - column, n2 * (i + 1) - start)
            runs.append((row, column, width))
            start += width
        pieces.append(runs)
    return pieces


class NodeBuilder:
    """Nodes and initializers of one rewrite, every name under ``prefix``, every node in the module scope ``scope``."""

    def __init__(self, prefix: str, scope: str) -> None:
        self.prefix, self.scope = prefix, scope
        self.nodes: list[NodeProto] = []
        self.inits: dict[str, TensorProto] = {}

    def const(self, name: str, value: npt.ArrayLike, dtype: npt.DTypeLike = np.float32) -> str:
        from onnx import numpy_helper

        full = f"{self.prefix}_{name}"
        if full not in self.inits:
            self.inits[full] = numpy_helper.from_array(np.asarray(value, dtype=dtype), full)
        return full

    def ints(self, name: str, value: npt.ArrayLike) -> str:
        return self.const(name, value, np.int64)

    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attributes: object) -> str:
        from onnx import helper

        output = output or f"{self.prefix}_{name}"
        self.nodes.append(helper.make_node(op, inputs, [output], f"{self.scope}/{name}", **attributes))
        return output


def framing_nodes(g: NodeBuilder, signal: str, length: int, frames: int, hop: int, n1: int, n2: int) -> str:
    """``signal [B, 1, length]`` -> frames ``[N1, B, frames, N2]``: sample ``t hop + N2 n1 + n2`` at
    ``[n1, b, t, n2]``, cut by ``Slice``s of the signal reshaped into rows of one hop (no frame is copied whole)."""
    # Rows of one hop: as many as the frames reach, and the whole signal (zero-padded to whole rows).
    rows = -(-max(length, (frames - 1) * hop + n1 * n2) // hop)
    flat = g.node("Reshape", [signal, g.ints("flat_shape", [0, -1])], "flat")
    padded = g.node("Pad", [flat, g.ints("pads", [0, 0, 0, rows * hop - length])], "padded")
    matrix = g.node("Reshape", [padded, g.ints("matrix_shape", [0, rows, hop])], "matrix")
    stacked = []
    for i, runs in enumerate(framing_pieces(n1, n2, hop)):
        parts = [g.node("Slice", [matrix, g.ints(f"start{i}_{j}", [row, column]),
                                  g.ints(f"end{i}_{j}", [row + frames, column + width]), g.ints("axes12", [1, 2])],
                        f"piece{i}_{j}") for j, (row, column, width) in enumerate(runs)]
        piece = parts[0] if len(parts) == 1 else g.node("Concat", parts, f"piece{i}", axis=2)
        stacked.append(g.node("Unsqueeze", [piece, g.ints("axis0", [0])], f"stack{i}"))
    return g.node("Concat", stacked, "frames", axis=0)


def cos_sin_nodes(g: NodeBuilder, name: str, k: np.ndarray, n: np.ndarray, period: int) -> tuple[str, str]:
    """``cos`` and ``-sin`` of ``2 pi (k n mod period) / period`` (``k``, ``n`` broadcastable integer arrays),
    computed in the graph: ``k n mod period`` in integers (exact), then an angle below 2 pi, so float32 keeps them
    to ~1e-7. Tables of a few integers replace the matrices in the file; onnxruntime folds these constants once,
    when the session loads."""
    product = g.node("Mul", [g.const(f"{name}_k", k, np.int32), g.const(f"{name}_n", n, np.int32)], f"{name}_kn")
    turns = g.node("Cast", [g.node("Mod", [product, g.const(f"{name}_period", period, np.int32)], f"{name}_mod")],
                   f"{name}_turns", to=1)
    angles = g.node("Mul", [turns, g.const(f"{name}_radians", 2 * np.pi / period)], f"{name}_angles")
    return g.node("Cos", [angles], f"{name}_cos"), g.node("Neg", [g.node("Sin", [angles], f"{name}_sin")],
                                                         f"{name}_minus_sin")


def step2_nodes(g: NodeBuilder, plan: FftPlan) -> tuple[str, str]:
    """``FftPlan.step2``'s two ``[H, N2, 2S]`` matrices, computed in the graph from the slot table."""
    cos, minus_sin = cos_sin_nodes(g, "step2", np.maximum(plan.slot_bins, 0)[:, None, :],
                                   np.arange(plan.n2)[None, :, None], plan.n1 * plan.n2)
    sign = g.node("Cast", [g.const("signs", plan.slot_signs[:, None, :], np.int8)], "sign", to=1)  # +1, -1, 0
    mask = g.node("Abs", [sign], "mask")  # 0: an empty slot
    c = g.node("Mul", [cos, mask], "c")
    s = g.node("Mul", [minus_sin, mask], "s")
    signed_c = g.node("Mul", [c, sign], "signed_c")
    signed_s = g.node("Neg", [g.node("Mul", [s, sign], "signed_s")], "minus_signed_s")
    return (g.node("Concat", [c, s], "step2_re", axis=2),
            g.node("Concat", [signed_s, signed_c], "step2_im", axis=2))


#: Mel bands per band-limited product (``mel_nodes``): 16 cut 003's mel product (128 bands) 7x.
MEL_GROUP = 16


def mel_nodes(g: NodeBuilder, plan: FftPlan, spectrum: str, mel_basis: np.ndarray, out: str) -> None:
    """``out = spectrum @ mel_basis`` with the basis's rows in the spectrum's position order (``j H + b``), as
    band-limited products: each group of ``MEL_GROUP`` consecutive bands covers a few stretches of positions (one
    per half of the slots; a mel filter is non-zero on few bins), and only those are multiplied (``Slice`` then
    ``MatMul``, summed), not the whole spectrum by mostly zero rows."""
    rows = np.zeros((plan.slots * plan.batches, mel_basis.shape[1]), dtype=np.float32)
    position_bins = plan.slot_bins.T.reshape(-1)
    rows[position_bins >= 0] = mel_basis[position_bins[position_bins >= 0]]
    # Stored sparse (~2 % of the values are non-zero) and scattered into a dense matrix once, when the session loads.
    nonzero = np.flatnonzero(rows)
    zeros = g.node("ConstantOfShape", [g.ints("mel_size", [rows.size])], "mel_zeros")  # float32 zeros
    where = g.node("Cast", [g.const("mel_where", nonzero[:, None], np.int32)], "mel_where_int64", to=7)
    dense = g.node("ScatterND", [zeros, where, g.const("mel_values", rows.reshape(-1)[nonzero])], "mel_scatter")
    basis = g.node("Reshape", [dense, g.ints("mel_shape", rows.shape)], "slot_mel")
    groups = []
    for start in range(0, rows.shape[1], MEL_GROUP):
        end = min(start + MEL_GROUP, rows.shape[1])
        used = np.flatnonzero(rows[:, start:end].any(axis=1))
        used = used if used.size else np.array([0])  # bands with no bin: one zero row gives their zeros
        runs = np.split(used, np.flatnonzero(np.diff(used) > plan.batches) + 1)
        products = []
        for run in runs:
            lo, hi = int(run[0]), int(run[-1]) + 1
            name = f"mel{start}_{lo}"
            part = g.node("Slice", [spectrum, g.ints(f"{name}_lo", [lo]), g.ints(f"{name}_hi", [hi]),
                                    g.ints("last_axis", [-1])], f"{name}_part")
            weights = g.node("Slice", [basis, g.ints(f"{name}_from", [lo, start]), g.ints(f"{name}_to", [hi, end]),
                                       g.ints("axes01", [0, 1])], f"{name}_weights")
            products.append(g.node("MatMul", [part, weights], f"{name}_product"))
        groups.append(products[0] if len(products) == 1 else g.node("Sum", products, f"mel{start}"))
    g.node("Concat", groups, "mel", output=out, axis=-1)


def fft_mel_nodes(signal: str, length: int, frames: int, window: np.ndarray, hop: int, mel_basis: np.ndarray,
                  out: str, prefix: str, scope: str) -> tuple[list[NodeProto], list[TensorProto]]:
    """Nodes and initializers computing ``out = |STFT(signal)|^2 @ mel_basis`` ``[B, frames, mels]`` from
    ``signal [B, 1, length]`` (frame ``t`` = samples ``t hop .. t hop + n_fft``, times ``window``);
    ``n_fft = len(window)`` must split (``fft_factors``); ``mel_basis`` is ``[n_fft // 2 + 1, mels]``."""
    n1, n2 = fft_factors(len(window))
    plan = fft_plan(n1, n2)
    g = NodeBuilder(prefix, scope)
    framed = framing_nodes(g, signal, length, frames, hop, n1, n2)  # [N1, B, T, N2]
    windowed = g.node("Mul", [framed, g.const("window", window.reshape(n1, 1, 1, n2))], "windowed")
    columns = g.node("Reshape", [windowed, g.ints("columns_shape", [n1, -1])], "columns")
    step1_re, step1_im = cos_sin_nodes(g, "step1", np.arange(plan.batches)[:, None], np.arange(n1)[None, :], n1)
    y_shape = g.ints("y_shape", [plan.batches, -1, n2])
    y_re = g.node("Reshape", [g.node("MatMul", [step1_re, columns], "y_re_flat"), y_shape], "y_re")
    y_im = g.node("Reshape", [g.node("MatMul", [step1_im, columns], "y_im_flat"), y_shape], "y_im")
    step2_re, step2_im = step2_nodes(g, plan)
    z = g.node("Add", [g.node("MatMul", [y_re, step2_re], "z_from_re"), g.node("MatMul", [y_im, step2_im], "z_from_im")],
               "z")  # [H, B T, 2S]
    squares = g.node("Mul", [z, z], "squares")
    half, last = g.ints("half", [plan.slots]), g.ints("last_axis", [-1])
    power = g.node("Add", [g.node("Slice", [squares, g.ints("zero", [0]), half, last], "re2"),
                           g.node("Slice", [squares, half, g.ints("end", [2 * plan.slots]), last], "im2")],
                   "power")  # [H, B T, S]
    by_frame = g.node("Transpose", [power], "by_frame", perm=[1, 2, 0])  # [B T, S, H]: position j H + b
    spectrum = g.node("Reshape", [by_frame, g.ints("spectrum_shape", [-1, frames, plan.slots * plan.batches])],
                      "spectrum")
    mel_nodes(g, plan, spectrum, mel_basis, out)
    return g.nodes, list(g.inits.values())
