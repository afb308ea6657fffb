"""Atom-level SMILES tokens: the Schwaller et al. (2019) regex, a fixed shipped vocabulary, randomized SMILES.

    tok = SmilesTokenizer()                  # the packaged vocabulary (smiles_vocab.json)
    tok.tokenize("C[C@@H](Cl)c1ccccc1%10")  # ['C', '[C@@H]', '(', 'Cl', ')', 'c', '1', ..., '%10']
    ids = tok.encode("CCO")                  # [<cls>, C, C, O, <sep>]
    tok.decode(ids) == "CCO"                 # exact round trip for in-vocabulary SMILES
    randomized_smiles("CCO", n=4, seed=1)    # seeded RDKit random SMILES (same molecule, other atom order)

Tokens: a bracket atom is one token (``[nH]``, ``[C@@H]``, ``[O-]``, ``[2H]``, ``[Se]``), ``Br`` / ``Cl`` are
one token, ``%NN`` ring closures are one token, bonds ``- = # $ : / \\``, branches, ``.`` and ring digits are
single characters. ``"".join(tokenize(s)) == s`` always holds; a SMILES with a character the regex does not
cover raises ``ValueError``.

Vocabulary (``smiles_vocab.json``, built by ``benchmarks/smiles/build_vocab.py`` from MOSES train + the TDC
ADMET train_val sets + a curated element x charge list): 5 special tokens ``<pad> <cls> <sep> <mask> <unk>``
(ids 0-4), then structure tokens, organic-subset atoms, ring closures ``0-9`` and ``%10-%99``, and bracket
atoms. A bracket atom outside the vocabulary is mapped *by element*: the atom-map number, isotope, chirality,
H count and charge are dropped one after the other until a vocabulary token is found (``[15NH3+]`` ->
``[NH3+]`` ... ``[N+]``; ``[Xe]`` -> ``<unk>`` only when the element itself is unknown). Such SMILES are
encoded fine but do not decode back exactly (``encode`` records how many tokens were mapped).

Randomized SMILES use ``Chem.MolToRandomSmilesVect(mol, n, randomSeed=s)``: RDKit's random SMILES follow
their own RNG, which ``rdBase.SeedRandomNumberGenerator`` does not control for ``doRandom`` (checked with
RDKit 2026.09: same seed, different output), while ``randomSeed > 0`` is deterministic across calls and
processes. Seeds are derived from (seed, canonical SMILES) so a molecule's variants do not depend on what it
is batched with.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

VOCAB_PATH = Path(__file__).resolve().parent / "smiles_vocab.json"

#: Schwaller et al., "Molecular Transformer" (ACS Cent. Sci. 2019): atom-level SMILES regex
SMILES_REGEX = (r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|"
                r"\%[0-9]{2}|[0-9])")
_TOKEN_RE = re.compile(SMILES_REGEX)

PAD, CLS, SEP, MASK, UNK = "<pad>", "<cls>", "<sep>", "<mask>", "<unk>"
SPECIALS = (PAD, CLS, SEP, MASK, UNK)
PAD_ID, CLS_ID, SEP_ID, MASK_ID, UNK_ID = range(5)

# [isotope] symbol [chirality] [H count] [charge] [:map]
_BRACKET_RE = re.compile(
    r"^\[(?P<iso>\d+)?(?P<el>se|as|te|si|[bcnops]|[A-Z][a-z]?|\*)"
    r"(?P<chi>@(?:@|TH[12]|AL[12]|SP[123]|TB\d{1,2}|OH\d{1,2})?)?(?P<h>H\d*)?"
    r"(?P<chg>[+-]+\d*)?(?P<map>:\d+)?\]$")
_ORGANIC = {"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s"}


def tokenize(smiles: str) -> list[str]:
    """Atom-level tokens of a SMILES string; ``"".join(tokens) == smiles`` (else ``ValueError``)."""
    tokens = _TOKEN_RE.findall(smiles)
    if "".join(tokens) != smiles:
        bad = _TOKEN_RE.sub("", smiles)
        raise ValueError(f"cannot tokenize SMILES {smiles!r}: unexpected character(s) {bad[:20]!r}")
    return tokens


def bracket_fallbacks(token: str) -> list[str]:
    """Ever coarser forms of a bracket atom (map, isotope, chirality, H count, charge dropped in turn), ending
    with the element as a plain organic-subset atom when it is one. Empty for a non-bracket token."""
    m = _BRACKET_RE.match(token)
    if not m:
        return []
    parts = {k: m.group(k) or "" for k in ("iso", "el", "chi", "h", "chg", "map")}
    out = []
    for drop in ("map", "iso", "chi", "h", "chg"):
        parts[drop] = ""
        cand = f"[{parts['iso']}{parts['el']}{parts['chi']}{parts['h']}{parts['chg']}{parts['map']}]"
        if cand != token and cand not in out:
            out.append(cand)
    if parts["el"] in _ORGANIC:
        out.append(parts["el"])
    return out


class SmilesTokenizer:
    """A fixed vocabulary (list of token strings, specials first) with encode/decode and the unknown fallback."""

    def __init__(self, vocab: Sequence[str] | None = None):
        tokens = list(load_vocab() if vocab is None else vocab)
        if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a SMILES vocabulary must start with the special tokens {SPECIALS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the SMILES vocabulary has duplicate tokens")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self._fallback: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()

    @property
    def n_special(self) -> int:
        return len(SPECIALS)

    @staticmethod
    def tokenize(smiles: str) -> list[str]:
        return tokenize(smiles)

    def token_id(self, token: str) -> int:
        """Id of a token; an unseen bracket atom maps to its closest in-vocabulary form, else ``<unk>``."""
        i = self.index.get(token)
        if i is not None:
            return i
        if token not in self._fallback:
            self._fallback[token] = next((self.index[c] for c in bracket_fallbacks(token) if c in self.index), UNK_ID)
        return self._fallback[token]

    def encode(self, smiles: str, add_special: bool = True, max_len: int | None = None) -> list[int]:
        """Token ids (``<cls> ... <sep>`` with ``add_special``); longer sequences are cut to ``max_len`` ids
        (the last one is still ``<sep>``)."""
        ids = [self.token_id(t) for t in tokenize(smiles)]
        if add_special:
            ids = [CLS_ID, *ids, SEP_ID]
        if max_len is not None and len(ids) > max_len:
            ids = ids[:max_len - 1] + [SEP_ID] if add_special else ids[:max_len]
        return ids

    def n_unknown(self, smiles: str) -> int:
        """How many tokens of ``smiles`` are not in the vocabulary (mapped by element or to ``<unk>``)."""
        return sum(t not in self.index for t in tokenize(smiles))

    def decode(self, ids: Iterable[int]) -> str:
        """SMILES text of ids; ``<pad> <cls> <sep>`` are skipped, ``<mask>``/``<unk>`` are written as such."""
        skip = {PAD_ID, CLS_ID, SEP_ID}
        return "".join(self.tokens[int(i)] for i in ids if int(i) not in skip)

    def to_json(self) -> dict:
        return {"format": "uniqsar-smiles-vocab/1", "tokens": self.tokens}


@lru_cache(maxsize=1)
def _load_vocab_cached() -> tuple[str, ...]:
    d = json.loads(VOCAB_PATH.read_text())
    return tuple(d["tokens"])


def load_vocab() -> list[str]:
    """The packaged vocabulary (``smiles_vocab.json``)."""
    return list(_load_vocab_cached())


# --------------------------------------------------------------------------------------------- randomized SMILES


def smiles_seed(smiles: str, seed: int, k: int = 0) -> int:
    """A positive 31-bit RDKit seed from (seed, SMILES, k), stable across processes."""
    h = hashlib.blake2b(f"{int(seed)}|{int(k)}|{smiles}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(h, "big") % (2**31 - 2)


def randomized_smiles(smiles_or_mol, n: int = 1, seed: int = 1) -> list[str]:
    """``n`` randomized SMILES of one molecule (same molecule, random atom order; stereo kept), deterministic
    for a seed > 0. Raises ``ValueError`` for an unparsable SMILES."""
    from rdkit import Chem

    mol = smiles_or_mol
    if isinstance(smiles_or_mol, str):
        mol = Chem.MolFromSmiles(smiles_or_mol)
        if mol is None:
            raise ValueError(f"cannot parse SMILES {smiles_or_mol!r}")
    if seed <= 0:
        raise ValueError("randomized_smiles needs seed > 0 (RDKit treats 0 as 'not seeded')")
    return list(Chem.MolToRandomSmilesVect(mol, int(n), randomSeed=int(seed)))


__all__ = ["SMILES_REGEX", "SPECIALS", "PAD_ID", "CLS_ID", "SEP_ID", "MASK_ID", "UNK_ID", "SmilesTokenizer",
           "tokenize", "bracket_fallbacks", "load_vocab", "randomized_smiles", "smiles_seed", "VOCAB_PATH"]
