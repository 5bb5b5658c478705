"""京津冀 mutual recognition: the rules (including the skill↔title bridge) and the partner agencies' questions."""
