"""How this project runs the Rasa server: `python -m serving run ...` instead of `rasa run ...`.

The launcher applies `serving.patches` (measured fixes of Rasa 3.6.21's hot path, each one
version-checked and tested) and then hands over to Rasa's own command line, unchanged.
"""
