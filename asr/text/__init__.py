"""Text: normalisation (training and scoring) and the vocabularies behind one Vocab interface."""
