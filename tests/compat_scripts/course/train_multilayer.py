# The course's MultiLayerNet with Batch Normalization and Dropout, trained with its Trainer.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common import layers
from common.trainer import Trainer
from synthetic import blobs

x, d = blobs(400, seed=1)
x_train, d_train, x_test, d_test = x[:300], d[:300], x[300:], d[300:]

np.random.seed(0)
network = layers.MultiLayerNet(input_size=20, hidden_size_list=[30, 30], output_size=4,
                               use_batchnorm=True, use_dropout=True, dropout_ratio=0.2,
                               weight_decay_lambda=0.01)
trainer = Trainer(network, x_train, d_train, x_test, d_test, epochs=3, mini_batch_size=50,
                  optimizer_name='rmsprpo', optimizer_param={'learning_rate': 0.01},
                  verbose=False)
trainer.train()
print("loss:", " ".join("%.10g" % v for v in trainer.train_loss_list))
print("train acc:", trainer.train_acc_list)
print("test acc:", trainer.test_acc_list)
print("optimizer:", type(trainer.optimizer).__name__, trainer.d_train.shape)
