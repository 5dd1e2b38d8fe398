"""Point Classifier Service: train small classifiers on labelled 2D points over HTTP."""
