# A notebook cell on the course's functions (teacher first).
import numpy as np
from common import functions

x = np.array([[-1.0, 0.0, 2.0], [0.5, -3.0, 1.0]])
d = np.array([[0, 0, 1], [1, 0, 0]])
y = functions.softmax(x)
print(" ".join("%.12g" % v for v in y.ravel()))
print(" ".join("%.12g" % v for v in functions.softmax(x[0])))
print("%.12g" % functions.cross_entropy_error(d, y), "%.12g" % functions.mean_squared_error(d, y))
print(" ".join("%.12g" % v for v in functions.d_sigmoid(x).ravel()))
print(functions.d_relu(x).tolist(), functions.d_step_function(x))
print(" ".join("%.12g" % v for v in functions.d_softmax_with_loss(d, y).ravel()))
print("%.12g" % functions.softmax_with_loss(d, x), type(functions.cross_entropy_error(d, y)).__name__)
