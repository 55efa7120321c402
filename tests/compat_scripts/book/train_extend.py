# coding: utf-8
# ch06 style: MultiLayerNetExtend with Batch Normalization and Dropout, trained with the Trainer.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.trainer import Trainer
from synthetic import blobs

x, t = blobs(400)
x_train, t_train, x_test, t_test = x[:300], t[:300], x[300:], t[300:]

np.random.seed(0)
network = MultiLayerNetExtend(input_size=20, hidden_size_list=[30, 30], output_size=4,
                              use_batchnorm=True, use_dropout=True, dropout_ration=0.2,
                              weight_decay_lambda=0.01)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=3, mini_batch_size=50,
                  optimizer='Adam', optimizer_param={'lr': 0.01}, verbose=False)
trainer.train()
print("loss:", " ".join("%.10g" % v for v in trainer.train_loss_list))
print("train acc:", trainer.train_acc_list)
print("test acc:", trainer.test_acc_list)
print("running mean: %.10g" % np.sum(network.layers['BatchNorm1'].running_mean))
