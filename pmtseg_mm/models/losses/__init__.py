from .tmaa_loss import TMAALoss, pooled_grid

__all__ = ['TMAALoss', 'pooled_grid']
