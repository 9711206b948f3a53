"""Neural recordings as a teacher: stimuli x sites responses with a region label per site.

A :class:`Recording` keeps every repetition: ``responses`` is (R, S, N) = repetitions x stimuli
x sites, NaN-padded where a stimulus was shown fewer than R times (real data: 21-50 repeats per
image). Teachers use the repetition mean per region (one teacher "layer" per region); the
repetitions give a split-half noise ceiling that says how much RDM similarity is attainable
(:func:`tgsage.rsa.split_half_noise_ceiling`). This module only reads and validates recordings.

File formats (all read into the same object):

* **NetCDF**, Brain-Score style ``NeuroidAssembly``: one data variable with dims
  ``presentation`` x ``neuroid`` (a size-1 ``time_bin`` dim is dropped); presentation coords
  ``stimulus_id`` (or legacy ``image_id``), optional ``repetition``, ``object_name``,
  ``category_name`` (other per-stimulus coords are kept when constant per stimulus); neuroid
  coords ``region`` and optional ``neuroid_id``. One presentation = one row; rows sharing a
  stimulus id are its repetitions.
* **NPZ** (no pickle): ``responses`` either (R, S, N) with ``stimulus_id`` (S,), or (rows, N)
  with ``stimulus_id`` (rows,) and optional ``repetition`` (rows,); ``region`` (N,); optional
  ``neuroid_id`` (N,), ``object_name`` / ``category_name`` and ``meta.<name>`` arrays, each with
  one entry per stimulus (or per row).
* **CSV**, one row per presentation: columns ``stimulus_id``, optional ``repetition``,
  ``object_name``, ``category_name``, ``meta.<name>``, then one column per site named
  ``<region>/<site id>`` (e.g. ``IT/site017``). Any column with a ``/`` is a site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tgsage.data.npz import read_npz as read_npz_arrays
from tgsage.errors import DataError

KNOWN_META = ("object_name", "category_name")


@dataclass(frozen=True)
class Recording:
    """Responses (R, S, N) float32 with NaN for missing repetitions, plus per-axis labels."""

    responses: np.ndarray
    stimulus_id: np.ndarray
    region: np.ndarray
    neuroid_id: np.ndarray | None = None
    stimulus_meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        resp = np.asarray(self.responses, dtype=np.float32)
        if resp.ndim == 2:
            resp = resp[None]
        if resp.ndim != 3:
            raise DataError(
                f"responses must be (stimuli, sites) or (repetitions, stimuli, "
                f"sites), got shape {resp.shape}"
            )
        _, s, n = resp.shape
        sid = np.asarray(self.stimulus_id).astype(str)
        reg = np.asarray(self.region).astype(str)
        if sid.shape != (s,):
            raise DataError(f"{s} stimuli but stimulus_id has shape {sid.shape}")
        if len(np.unique(sid)) != s:
            raise DataError(
                "stimulus_id values must be unique per stimulus; use "
                "Recording.from_rows for one row per presentation"
            )
        if reg.shape != (n,):
            raise DataError(f"{n} sites but region has shape {reg.shape}")
        nid = (
            np.array([f"site{i}" for i in range(n)])
            if self.neuroid_id is None
            else np.asarray(self.neuroid_id).astype(str)
        )
        if nid.shape != (n,):
            raise DataError(f"{n} sites but neuroid_id has shape {nid.shape}")
        meta = {k: np.asarray(v) for k, v in self.stimulus_meta.items()}
        meta = {k: v.astype(str) if v.dtype == object else v for k, v in meta.items()}
        for k, v in meta.items():
            if v.shape != (s,):
                raise DataError(f"stimulus meta {k!r} has shape {v.shape}, expected ({s},)")
        if s and np.isnan(resp).all(axis=(0, 2)).any():
            bad = sid[np.isnan(resp).all(axis=(0, 2))][0]
            raise DataError(f"stimulus {bad!r} has no response at all; drop it")
        if s and n:  # a site without any response to a stimulus would make every RDM NaN
            silent = np.isnan(resp).all(axis=0)  # (S, N): no repetition has a value
            if silent.any():
                j = int(np.flatnonzero(silent.any(axis=0))[0])
                where = (
                    "no response at all (every value is NaN)"
                    if silent[:, j].all()
                    else f"no response to stimulus {str(sid[np.flatnonzero(silent[:, j])[0]])!r}"
                )
                raise DataError(
                    f"site {str(nid[j])!r} (region {str(reg[j])!r}) has {where}; drop the site "
                    f"({int(silent.any(axis=0).sum())} of {n} sites are affected)"
                )
        object.__setattr__(self, "responses", resp)
        object.__setattr__(self, "stimulus_id", sid)
        object.__setattr__(self, "region", reg)
        object.__setattr__(self, "neuroid_id", nid)
        object.__setattr__(self, "stimulus_meta", meta)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_rows(
        cls,
        responses: np.ndarray,
        stimulus_id: Sequence[Any] | np.ndarray,
        region: Sequence[Any] | np.ndarray,
        neuroid_id: Sequence[Any] | np.ndarray | None = None,
        repetition: Sequence[Any] | np.ndarray | None = None,
        row_meta: dict[str, np.ndarray] | None = None,
        source: str = "recording",
    ) -> Recording:
        """Build from one row per presentation; rows sharing a stimulus id are repetitions.

        Stimuli keep the order of their first row; repetitions are ordered by ``repetition``
        (when given) or by row order.
        """
        rows = np.asarray(responses, dtype=np.float32)
        if rows.ndim != 2:
            raise DataError(
                f"{source}: row responses must be (presentations, sites), got {rows.shape}"
            )
        ids = np.asarray(stimulus_id).astype(str)
        if ids.shape != (rows.shape[0],):
            raise DataError(f"{source}: {rows.shape[0]} rows but {ids.shape} stimulus ids")
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
        s_idx = rank[inverse.ravel()]
        if repetition is None:
            rep_key = np.arange(len(ids))
        else:
            rep_key = np.asarray(repetition)
            if rep_key.shape != ids.shape:
                raise DataError(
                    f"{source}: repetition has shape {rep_key.shape}, expected {ids.shape}"
                )
        order = np.lexsort((rep_key, s_idx))
        s_sorted = s_idx[order]
        starts = np.searchsorted(s_sorted, s_sorted, side="left")
        slot = np.empty(len(ids), dtype=np.int64)
        slot[order] = np.arange(len(ids)) - starts
        if repetition is not None:
            rk = rep_key[order]
            dup = (s_sorted[1:] == s_sorted[:-1]) & (rk[1:] == rk[:-1])
            if dup.any():
                i = order[1:][dup][0]
                raise DataError(
                    f"{source}: stimulus '{ids[i]}' has repetition {rep_key[i]} "
                    "twice; make (stimulus_id, repetition) unique"
                )
        n_s = len(uniq)
        n_r = int(slot.max()) + 1 if len(slot) else 1
        out = np.full((n_r, n_s, rows.shape[1]), np.nan, dtype=np.float32)
        out[slot, s_idx] = rows
        stim_ids = np.empty(n_s, dtype=ids.dtype)
        stim_ids[s_idx] = ids
        meta = {}
        first_row = np.empty(n_s, dtype=np.int64)
        first_row[rank] = first
        for k, v in (row_meta or {}).items():
            v = np.asarray(v)
            per = v[first_row]
            if not np.array_equal(per[s_idx], v):
                if k in KNOWN_META:
                    raise DataError(
                        f"{source}: {k!r} differs between repetitions of one "
                        "stimulus; it must be constant per stimulus_id"
                    )
                continue  # a per-presentation coordinate (e.g. trial time): not stimulus meta
            meta[k] = per
        return cls(out, stim_ids, region, neuroid_id, meta)

    # ------------------------------------------------------------------ views
    @property
    def n_stimuli(self) -> int:
        return int(self.responses.shape[1])

    @property
    def n_sites(self) -> int:
        return int(self.responses.shape[2])

    @property
    def n_repetitions(self) -> int:
        """Largest number of repetitions of any stimulus (R)."""
        return int(self.responses.shape[0])

    def repetition_counts(self) -> np.ndarray:
        """Repetitions per stimulus (S,): rows that are not entirely missing."""
        return (~np.isnan(self.responses).all(axis=2)).sum(axis=0)

    def mean(self) -> np.ndarray:
        """Repetition-averaged responses (S, N) float32, in stimulus order."""
        if self.n_repetitions == 1:
            return self.responses[0].copy()
        with np.errstate(invalid="ignore"):
            return np.nanmean(self.responses, axis=0).astype(np.float32)

    def averaged(self) -> Recording:
        """The same recording with repetitions averaged (R = 1)."""
        return Recording(
            self.mean()[None],
            self.stimulus_id,
            self.region,
            self.neuroid_id,
            dict(self.stimulus_meta),
        )

    def regions(self) -> tuple[str, ...]:
        """Region names in order of first appearance among the sites."""
        _, first = np.unique(self.region, return_index=True)
        return tuple(self.region[np.sort(first)].tolist())

    def _sites(self, region: str) -> np.ndarray:
        mask = self.region == region
        if not mask.any():
            raise DataError(f"no sites in region {region!r}; regions are {list(self.regions())}")
        return mask

    def region_responses(self, region: str) -> np.ndarray:
        """Repetition-averaged responses of one region's sites, (stimuli, sites) float32."""
        return self.mean()[:, self._sites(region)]

    def region_features(self) -> dict[str, np.ndarray]:
        """Every region's (stimuli, sites) matrix: one teacher layer per region."""
        mean = self.mean()
        return {r: mean[:, self.region == r] for r in self.regions()}

    def labels(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Integer codes (S,) of a per-stimulus label (e.g. ``category_name``) and the names,
        numbered in order of first appearance (for grouped RDMs)."""
        if name not in self.stimulus_meta:
            raise DataError(f"no stimulus label {name!r}; available: {sorted(self.stimulus_meta)}")
        values = self.stimulus_meta[name].astype(str)
        uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[order] = np.arange(len(uniq))
        return rank[inverse.ravel()], tuple(uniq[order].tolist())

    def select_stimuli(self, index: np.ndarray) -> Recording:
        index = np.asarray(index)
        return Recording(
            self.responses[:, index],
            self.stimulus_id[index],
            self.region,
            self.neuroid_id,
            {k: v[index] for k, v in self.stimulus_meta.items()},
        )

    def align(self, stimuli: Any) -> Recording:
        """Reorder stimuli to match a probe set's ``stimulus_ids`` (or a sequence of ids).

        Refuses, naming examples, when the probe has stimuli the recording lacks or the
        recording has stimuli the probe lacks (pass ``recording.select`` first to drop them).
        """
        ids = np.asarray(getattr(stimuli, "stimulus_ids", stimuli)).astype(str)
        pos = {s: i for i, s in enumerate(self.stimulus_id.tolist())}
        missing = [s for s in ids.tolist() if s not in pos]
        wanted = set(ids.tolist())
        extra = [s for s in self.stimulus_id.tolist() if s not in wanted]
        if missing or extra:
            parts = []
            if missing:
                parts.append(
                    f"{len(missing)} probe stimuli missing from the recording (e.g. {missing[:3]})"
                )
            if extra:
                parts.append(
                    f"{len(extra)} recorded stimuli not in the probe set (e.g. {extra[:3]})"
                )
            raise DataError(
                "cannot align recording to probe set: "
                + "; ".join(parts)
                + ". Use matching stimulus ids, or subset both to the shared ones"
            )
        return self.select_stimuli(np.array([pos[s] for s in ids.tolist()], dtype=np.int64))

    # ------------------------------------------------------------------ writers
    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        present = ~np.isnan(self.responses).all(axis=2)  # (R, S)
        rep, stim = np.nonzero(present)  # repetition-major order
        return self.responses[rep, stim], stim, rep

    def to_netcdf(self, path: str | Path) -> Path:
        """Write a Brain-Score-style NeuroidAssembly (presentation x neuroid) with h5netcdf."""
        import xarray as xr

        rows, stim, rep = self._rows()
        coords: dict[str, Any] = {
            "stimulus_id": ("presentation", self.stimulus_id[stim].astype(object)),
            "repetition": ("presentation", rep.astype(np.int64)),
            "neuroid_id": ("neuroid", self.neuroid_id.astype(object)),
            "region": ("neuroid", self.region.astype(object)),
        }
        for k, v in self.stimulus_meta.items():
            vals = v[stim]
            coords[k] = ("presentation", vals.astype(object) if vals.dtype.kind == "U" else vals)
        da = xr.DataArray(rows, dims=("presentation", "neuroid"), coords=coords, name="responses")
        path = Path(path)
        da.to_netcdf(path, engine="h5netcdf")
        return path

    def to_npz(self, path: str | Path) -> Path:
        """Write the NPZ layout (responses (R, S, N) + labels; no pickle)."""
        arrays = {
            "responses": self.responses,
            "stimulus_id": self.stimulus_id,
            "region": self.region,
            "neuroid_id": self.neuroid_id,
        }
        for k, v in self.stimulus_meta.items():
            arrays[k if k in KNOWN_META else f"meta.{k}"] = v
        path = Path(path)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path


# ---------------------------------------------------------------------- readers
def read_netcdf(path: str | Path) -> Recording:
    """A Brain-Score-style NeuroidAssembly NetCDF file (see module doc)."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise DataError(f"recording file {path} not found")
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable NetCDF file ({exc})") from None
    with ds:
        names = list(ds.data_vars)
        preferred = [
            n for n in ("__xarray_dataarray_variable__", "responses", "data") if n in names
        ]
        if len(names) != 1 and not preferred:
            raise DataError(f"{path}: expected one data variable (the assembly), found {names}")
        da = ds[preferred[0] if preferred else names[0]].load()
    for dim in da.dims:
        if dim not in ("presentation", "neuroid"):
            if da.sizes[dim] != 1:
                raise DataError(
                    f"{path}: dimension {dim!r} has size {da.sizes[dim]}; select "
                    f"one first, e.g. assembly.isel({dim}=0), and save again"
                )
            da = da.isel({dim: 0}, drop=True)
    if set(da.dims) != {"presentation", "neuroid"}:
        raise DataError(
            f"{path}: dims are {da.dims}; a NeuroidAssembly needs ('presentation', 'neuroid')"
        )
    da = da.transpose("presentation", "neuroid")

    def coord(name: str, dim: str) -> np.ndarray | None:
        if name in da.coords and da.coords[name].dims == (dim,):
            return np.asarray(da.coords[name].values)
        return None

    sid = coord("stimulus_id", "presentation")
    if sid is None:
        sid = coord("image_id", "presentation")
    if sid is None:
        raise DataError(
            f"{path}: no 'stimulus_id' coordinate on the presentation dim; add one "
            "naming the image shown in each presentation"
        )
    region = coord("region", "neuroid")
    if region is None:
        raise DataError(
            f"{path}: no 'region' coordinate on the neuroid dim; add one (e.g. 'V4', 'IT') per site"
        )
    skip = {"stimulus_id", "image_id", "repetition"}
    row_meta = {
        str(k): np.asarray(c.values)
        for k, c in da.coords.items()
        if c.dims == ("presentation",) and k not in skip and k != "presentation"
    }
    return Recording.from_rows(
        da.values,
        sid,
        region,
        neuroid_id=coord("neuroid_id", "neuroid"),
        repetition=coord("repetition", "presentation"),
        row_meta=row_meta,
        source=str(path),
    )


def read_npz(path: str | Path) -> Recording:
    """The NPZ layout (see module doc); read without pickle."""
    path = Path(path)
    data = read_npz_arrays(
        path, "recording file", "write it with numpy.savez (see tgsage.data.neural)"
    )
    for key in ("responses", "stimulus_id", "region"):
        if key not in data:
            raise DataError(
                f"{path}: missing array {key!r}; an NPZ recording needs "
                "responses, stimulus_id and region"
            )
    meta = {
        k.removeprefix("meta."): v
        for k, v in data.items()
        if k in KNOWN_META or k.startswith("meta.")
    }
    resp = data["responses"]
    if resp.ndim == 3:
        return Recording(resp, data["stimulus_id"], data["region"], data.get("neuroid_id"), meta)
    return Recording.from_rows(
        resp,
        data["stimulus_id"],
        data["region"],
        data.get("neuroid_id"),
        data.get("repetition"),
        meta,
        source=str(path),
    )


def read_csv(path: str | Path) -> Recording:
    """The wide CSV layout: one row per presentation, site columns ``<region>/<site id>``."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"stimulus_id": str})
    except FileNotFoundError:
        raise DataError(f"recording file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable CSV recording ({exc})") from None
    if "stimulus_id" not in df.columns:
        raise DataError(f"{path}: no 'stimulus_id' column")
    sites = [c for c in df.columns if "/" in c]
    if not sites:
        raise DataError(
            f"{path}: no site columns; name them '<region>/<site id>', e.g. 'IT/site017'"
        )
    region = np.array([c.split("/", 1)[0] for c in sites])
    nid = np.array([c.split("/", 1)[1] for c in sites])
    meta = {
        c.removeprefix("meta."): df[c].to_numpy()
        for c in df.columns
        if c in KNOWN_META or c.startswith("meta.")
    }
    rep = df["repetition"].to_numpy() if "repetition" in df.columns else None
    try:
        values = df[sites].to_numpy(dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{path}: site columns must be numbers ({exc})") from None
    return Recording.from_rows(
        values, df["stimulus_id"].to_numpy(), region, nid, rep, meta, source=str(path)
    )


READERS = {
    ".nc": read_netcdf,
    ".nc4": read_netcdf,
    ".netcdf": read_netcdf,
    ".h5": read_netcdf,
    ".npz": read_npz,
    ".csv": read_csv,
}


def load_recording(path: str | Path) -> Recording:
    """Read a recording, choosing the reader by file suffix (.nc, .npz, .csv)."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"{path}: unknown recording format {path.suffix!r}; use .nc (Brain-Score "
            "NetCDF), .npz or .csv"
        )
    return reader(path)
