"""lowrank: reproduce 'SGD and Weight Decay Secretly Minimize the Rank of Your Neural Network'."""

__version__ = "0.1.0"
