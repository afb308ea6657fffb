"""D-MPNN ("2D graph" track): directed message passing over bonds (chemprop v2 style).

Modules: ``learner`` (the network ``DMPNNModel`` and learner ``dmpnn``), ``pretrain`` + ``pretrain_recipe``
(descriptor-supervised pretraining on a SMILES corpus: ``uniqsar pretrain --recipe pretrain_dmpnn_desc``),
``pretrained`` (which encoder weights: shipped default / random / checkpoint file, identity with sha256 and
pretraining provenance) and ``featurizer`` (featurizer ``dmpnn_emb``: frozen encoder vectors for the GBDTs).
"""
from .learner import (AGGREGATIONS, DMPNN, DMPNNModel, DMPNNTrainer, apply_descriptor_scaler, collate,
                      fit_descriptor_scaler, noam_lambda)

__all__ = ["AGGREGATIONS", "DMPNN", "DMPNNModel", "DMPNNTrainer", "apply_descriptor_scaler", "collate",
           "fit_descriptor_scaler", "noam_lambda"]
