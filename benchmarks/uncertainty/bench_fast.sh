#!/bin/bash
# seed-major: every TDC regression task at seed 1 first, then 3 small binary tasks, then the other seeds
cd /work/main
REG="caco2_wang half_life_obach vdss_lombardo clearance_microsome_az clearance_hepatocyte_az ppbr_az lipophilicity_astrazeneca ld50_zhu solubility_aqsoldb"
BIN="hia_hou bioavailability_ma herg dili bbb_martins"
for s in 1 2 3 4 5; do
  nice -n 15 python benchmarks/uncertainty/run.py --tasks $REG --seeds $s --preset fast --out benchmarks/uncertainty/results/fast
  nice -n 15 python benchmarks/uncertainty/run.py --tasks $BIN --seeds $s --preset fast --out benchmarks/uncertainty/results/fast
done
