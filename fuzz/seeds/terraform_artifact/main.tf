variable "name" {
  type        = string
  description = "The name"
}
variable "size" {
  type    = number
  default = 1
}
variable "tags" {
  type      = map(string)
  default   = { a = "b" }
  sensitive = true
}
variable "shape" {
  type    = object({ name = string, ports = list(number) })
  default = { name = "x", ports = [80, 443] }
}
output "greeting" { value = "hello ${var.name}" }
