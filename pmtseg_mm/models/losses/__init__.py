from .task_contrastive_loss import TaskContrastiveLoss
from .tmaa_loss import TMAALoss

__all__ = ['TaskContrastiveLoss', 'TMAALoss']
