"""The pure evaluator: rules + facts + time -> a plan of actions and decisions."""
