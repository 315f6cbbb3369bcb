from .tmaa_loss import TMAALoss

__all__ = ['TMAALoss']
