"""How good is a map? Each module measures one thing; the public names are re-exported from ``attribkit``.

- :mod:`~attribkit.evaluation.erasure`: ERASER comprehensiveness and sufficiency (``ak.faithfulness``);
- :mod:`~attribkit.evaluation.soft_erasure`: soft comprehensiveness and sufficiency (``ak.soft_faithfulness``);
- :mod:`~attribkit.evaluation.rationales`: agreement with human rationales (``ak.plausibility``);
- :mod:`~attribkit.evaluation.sanity`: the model-randomisation check (``ak.randomization_check``);
- :mod:`~attribkit.evaluation.metrics`: the measures they share (AOPC, rank correlations, token F1).
"""
