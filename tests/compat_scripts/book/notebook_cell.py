# A notebook cell on the book's functions (output first, teacher second).
import numpy as np
from common import functions
from common.util import conv_output_size

x = np.array([[-1.0, 0.0, 2.0], [0.5, -3.0, 1.0]])
t = np.array([[0, 0, 1], [1, 0, 0]])
y = functions.softmax(x)
print(" ".join("%.12g" % v for v in y.ravel()))
print("%.12g" % functions.cross_entropy_error(y, t), "%.12g" % functions.cross_entropy_error(y, np.array([2, 0])))
print("%.12g" % functions.sum_squared_error(y, t), "%.12g" % functions.softmax_loss(x, t))
print(" ".join("%.12g" % v for v in functions.sigmoid_grad(x).ravel()))
print(functions.relu_grad(x).tolist(), functions.step_function(x).dtype.kind)
print(type(functions.cross_entropy_error(y, t)).__name__, conv_output_size(28, 5, 2, 1))
