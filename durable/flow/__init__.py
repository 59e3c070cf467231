"""How an execution moves through its definition. Pure logic over JSON state; no ORM."""
