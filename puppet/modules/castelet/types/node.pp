# @summary One instance of the deployment, as written by Terraform in `data/terraform.yaml`.
type Castelet::Node = Struct[{
    role => String[1],
}]
