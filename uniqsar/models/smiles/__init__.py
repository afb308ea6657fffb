"""SMILES transformer ("1D tokens" track): atom-level tokens -> small pre-LN transformer encoder.

Modules: ``model`` (encoder, MLM head, pooling), ``pretrained`` (which weights: shipped default / random /
checkpoint file, identity with sha256), ``pretrain`` + ``pretrain_recipe`` (MLM pretraining, `uniqsar pretrain
--recipe pretrain_smiles_<name>`), ``learner`` (learner ``smiles_transformer``: fine-tuning) and ``featurizer``
(featurizer ``smiles_transformer``: CLS + mean embeddings for the GBDT learners). The tokenizer lives in
``uniqsar.featurize.smiles_tokens``. Importing this package does not import torch.
"""
