# Stand-in for the book's dataset/mnist.py in a checkout: nnfast.compat serves
# dataset.mnist itself (reading this folder's mnist.pkl), so this file is never run.
raise ImportError("dataset/mnist.py was imported: nnfast.compat should have served it")
