"""Build the packaged SMILES vocabulary uniqsar/featurize/smiles_vocab.json (run once; the file is shipped).

    nice -n 15 python benchmarks/smiles/build_vocab.py --moses ../shared/data/moses/train.csv.gz \
        --tdc ../shared/data/tdc_admet_group --out uniqsar/featurize/smiles_vocab.json

Tokens, in this order (ids are positions; never reorder a shipped vocabulary, pretrained weights depend on it):
  1. specials <pad> <cls> <sep> <mask> <unk>;
  2. structure: bonds, branches, '.', and the other single characters of the Schwaller regex;
  3. organic-subset atoms (aliphatic and aromatic) and '*';
  4. ring closures 0-9 and %10-%99 (randomized SMILES open many rings at once);
  5. bracket atoms: every one seen at least --min-count times in the canonical MOSES train SMILES, in
     randomized SMILES of a MOSES subsample (chirality tags flip with atom order), and in the canonicalized
     TDC ADMET *train_val* sets (test sets are not read); plus a curated element x charge x H list for
     drug-like chemistry, salts and metals; plus the @/@@ partner of every chiral token. Sorted by symbol.
"""
from __future__ import annotations

import argparse
import glob
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from uniqsar.featurize.smiles_tokens import SPECIALS, tokenize

STRUCTURE = ["(", ")", ".", "=", "#", "-", "+", "\\", "/", ":", "~", "@", "?", ">", "$"]
ORGANIC = ["C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "c", "n", "o", "s", "p", "b", "*"]
RINGS = [str(i) for i in range(10)] + [f"%{i}" for i in range(10, 100)]
# curated bracket atoms: elements of drug-like compounds, salts, contrast agents and metallodrugs
ELEMENTS = ["H", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr",
            "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Li", "Rb", "Sr", "Zr", "Mo", "Ru",
            "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Cs", "Ba", "La", "Gd", "W", "Re", "Os", "Ir",
            "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Be", "Sc", "Y", "Nd", "Sm", "Eu", "Tb", "Lu", "Tc", "U"]
AROMATIC = ["b", "c", "n", "o", "p", "s", "se", "as", "te"]
CURATED = (
    [f"[{e}]" for e in ELEMENTS] + [f"[{e}{c}]" for e in ELEMENTS for c in ("+", "-", "+2", "+3", "-2")]
    + [f"[{a}]" for a in AROMATIC] + ["[nH]", "[n+]", "[n-]", "[nH+]", "[o+]", "[s+]", "[c-]", "[cH-]", "[se+]"]
    + ["[NH+]", "[NH2+]", "[NH3+]", "[NH4+]", "[NH-]", "[N@+]", "[N@@+]", "[N@]", "[N@@]", "[N@H+]", "[N@@H+]",
       "[OH-]", "[OH2+]", "[OH+]", "[SH]", "[SH-]", "[SH+]", "[S@]", "[S@@]", "[S@+]", "[S@@+]", "[P@]", "[P@@]",
       "[P@+]", "[P@@+]", "[PH]", "[PH+]", "[PH2]", "[P+]", "[CH]", "[CH-]", "[CH2]", "[CH2-]", "[CH+]", "[C@]",
       "[C@@]", "[C@H]", "[C@@H]", "[Si@]", "[Si@@]", "[SiH]", "[SiH2]", "[SiH3]", "[BH-]", "[BH3-]", "[BH4-]",
       "[B@-]", "[B@@-]", "[AlH3]", "[GeH]", "[SeH]", "[AsH]", "[H+]", "[H-]"]
    + ["[2H]", "[3H]", "[11C]", "[13C]", "[14C]", "[13CH]", "[13CH2]", "[13CH3]", "[14CH2]", "[15N]", "[15NH]",
       "[17O]", "[18O]", "[18F]", "[32P]", "[35S]", "[36Cl]", "[76Br]", "[123I]", "[124I]", "[125I]", "[131I]",
       "[99Tc]", "[11CH3]", "[14CH3]", "[2H+]"]
)


def _brackets(smiles, counter: Counter) -> None:
    for s in smiles:
        try:
            toks = tokenize(s)
        except ValueError:
            continue
        counter.update(t for t in toks if t.startswith("["))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moses", required=True)
    ap.add_argument("--tdc", required=True, help="tdc_admet_group folder (only */train_val.csv is read)")
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--random-sample", type=int, default=50000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from rdkit import Chem, RDLogger

    from uniqsar.featurize.smiles_tokens import randomized_smiles

    RDLogger.DisableLog("rdApp.*")
    counts: Counter = Counter()
    moses = pd.read_csv(a.moses)["SMILES"].astype(str).tolist()
    _brackets(moses, counts)
    rnd = []
    for i, s in enumerate(moses[:: max(1, len(moses) // a.random_sample)][: a.random_sample]):
        mol = Chem.MolFromSmiles(s)
        if mol is not None:
            rnd += randomized_smiles(mol, 2, seed=i + 1)
    _brackets(rnd, counts)
    tdc = []
    for f in sorted(glob.glob(str(Path(a.tdc) / "*" / "train_val.csv"))):
        for s in pd.read_csv(f)["Drug"].astype(str):
            mol = Chem.MolFromSmiles(s)
            if mol is not None:
                can = Chem.MolToSmiles(mol)
                tdc += [can, *randomized_smiles(mol, 1, seed=len(tdc) + 1)]
    _brackets(tdc, counts)
    seen = {t for t, c in counts.items() if c >= a.min_count}
    brackets = seen | set(CURATED)
    for t in list(brackets):  # chirality partners
        if "@@" in t:
            brackets.add(t.replace("@@", "@"))
        elif "@" in t:
            brackets.add(t.replace("@", "@@"))
    fixed = list(SPECIALS) + STRUCTURE + ORGANIC + RINGS
    tokens = fixed + sorted(brackets - set(fixed), key=lambda t: (t.strip("[]0123456789").lower(), t))
    rare = sorted((t for t, c in counts.items() if c < a.min_count and t not in brackets), key=lambda t: -counts[t])
    out = {"format": "uniqsar-smiles-vocab/1",
           "source": "MOSES train (canonical + randomized subsample), TDC ADMET train_val (canonical + randomized), "
                     "curated element/charge list; benchmarks/smiles/build_vocab.py",
           "min_count": a.min_count, "n_tokens": len(tokens), "tokens": tokens}
    Path(a.out).write_text(json.dumps(out, indent=0) + "\n")
    print(f"{len(tokens)} tokens ({len(brackets)} bracket atoms; {len(seen)} seen >= {a.min_count} times); "
          f"rare bracket atoms left out (mapped by element): {rare[:30]}")


if __name__ == "__main__":
    main()
