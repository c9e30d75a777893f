"""Models (TensorFlow / tf_keras). Import ``kerasdance.models.lstm_cnn``."""
